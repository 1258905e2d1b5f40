"""``example-no-repeat-greedy``: greedy decoding that never emits the same token twice in a row.

A decoder continues a batch of token-id contexts by ``new_tokens`` tokens and reports, per step, the entropy
and top-1 probability of the model's *raw* distribution (before any change the decoder makes): the
``entropy`` metric and ``harness show`` read them. Its output must depend only on the weights, the context
and the row's seed (``ctx.seeds``), never on which other rows share the batch; this one is deterministic and
decodes each row alone, without a KV cache, to stay short (the bundled decoders batch and cache).
It honours the benchmark's EOS policy (``ctx.stop_at_eos``, from ``eval.stop_at_eos``): by default EOS is never
picked and every row has exactly ``new_tokens`` tokens; with ``stop_at_eos`` a row ends when the model picks EOS
(EOS itself is not part of the output) and is flagged ``stopped_at_eos``.
"""

from __future__ import annotations

from harness.api import DecodeContext, Decoder, Generation, hookimpl, inference, ModelHandle


class NoRepeatGreedy(Decoder):
    name = "example-no-repeat-greedy"
    description = "Greedy, except that the previous token is never picked again"
    version = "1"
    deterministic = True
    params = ()

    def generate(
        self, handle: ModelHandle, contexts: list[list[int]], new_tokens: int, ctx: DecodeContext
    ) -> list[Generation]:
        import torch

        module = handle.module
        device = next(module.parameters()).device
        eos = handle.codec.eos_token_id
        out = []
        with inference(module):
            for context in contexts:
                ids = list(context)
                gen = Generation(output_ids=[])
                for _ in range(new_tokens):
                    logits = module(input_ids=torch.tensor([ids], device=device)).logits[0, -1].float()
                    logp = torch.log_softmax(logits, dim=-1)
                    gen.step_entropy.append(float(-(logp.exp() * logp).sum()))
                    gen.step_top1.append(float(logp.max().exp()))
                    logits[ids[-1]] = float("-inf")  # the only change to greedy
                    if eos is not None and not ctx.stop_at_eos:
                        logits[eos] = float("-inf")  # the fixed-length policy: EOS is never chosen
                    token = int(logits.argmax())
                    if token == eos:  # only under ctx.stop_at_eos: EOS and its statistics are not kept
                        gen.step_entropy.pop()
                        gen.step_top1.pop()
                        gen.stopped_at_eos = True
                        break
                    gen.output_ids.append(token)
                    ids.append(token)
                out.append(gen)
        return out


@hookimpl
def harness_register_decoders(register):
    register(NoRepeatGreedy)
