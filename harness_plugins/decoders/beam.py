"""``beam``: beam search, by transformers' own ``generate(num_beams=...)`` (still in transformers' core)."""

from __future__ import annotations

from harness.api import DecodeContext, Decoder, Generation, ModelHandle, Param, model_device, pad_batch, pad_id, rescore


class Beam(Decoder):
    """Definition: transformers' beam search (``do_sample=False, num_beams, length_penalty,
    early_stopping``, nothing else: the model's own generation config is set aside for the call, so no
    repetition penalty or sampling setting of a checkpoint leaks in); the highest-scoring finished
    hypothesis (sum of log-probabilities / length^length_penalty) is returned. Under the default EOS policy
    (``eval.stop_at_eos: false``) EOS is suppressed (``suppress_tokens=[eos]``: its log-probability is set to
    −inf at every step), so every hypothesis runs to exactly ``new_tokens`` tokens; with ``stop_at_eos`` a
    hypothesis may finish at EOS and the output is cut before its first EOS.
    Per-step statistics are those of the *raw* distribution along the returned sequence, taken by one
    teacher-forced re-scoring pass (beam search has no single step-by-step path to record)."""

    name = "beam"
    description = "Beam search (transformers generate) with a length penalty; deterministic."
    version = "1"
    deterministic = True
    params = (
        Param("num_beams", int, default=4, min=1, help="beams kept per context"),
        Param("length_penalty", float, default=1.0, help="exponent on the length in the final score (>0 favours long)"),
        Param("early_stopping", bool, default=False, help="stop a context as soon as num_beams hypotheses are finished"),
    )

    def generate(self, handle: ModelHandle, contexts: list[list[int]], new_tokens: int, ctx: DecodeContext) -> list[Generation]:
        import torch
        from transformers import GenerationConfig

        if not contexts:
            return []
        module = handle.module
        pad = pad_id(handle)
        eos = handle.codec.eos_token_id
        input_ids, mask, _ = pad_batch(contexts, pad, model_device(module), "left")
        config = GenerationConfig(
            do_sample=False,
            num_beams=self.option("num_beams"),
            length_penalty=self.option("length_penalty"),
            early_stopping=self.option("early_stopping"),
            max_new_tokens=new_tokens,
            pad_token_id=pad,
            eos_token_id=eos,
            **({} if ctx.stop_at_eos or eos is None else {"suppress_tokens": [eos]}),
        )
        own_config = getattr(module, "generation_config", None)
        was_training = module.training
        module.eval()
        try:
            module.generation_config = GenerationConfig(pad_token_id=pad, eos_token_id=eos)
            with torch.inference_mode():
                sequences = module.generate(input_ids=input_ids, attention_mask=mask, generation_config=config)
        finally:
            module.generation_config = own_config
            module.train(was_training)
        outputs, ended = [], []
        for row in sequences[:, input_ids.shape[1] :].tolist():
            stopped = ctx.stop_at_eos and eos is not None and eos in row
            outputs.append(row[: row.index(eos)] if stopped else row)
            ended.append(stopped)
        stats = rescore(handle, contexts, outputs)
        return [Generation(out, ent, top, stopped_at_eos=e) for out, (ent, top), e in zip(outputs, stats, ended)]
