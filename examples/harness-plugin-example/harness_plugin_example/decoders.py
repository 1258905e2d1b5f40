"""``example-no-repeat-greedy``: greedy decoding that never emits the same token twice in a row.

A decoder continues a batch of token-id contexts by ``new_tokens`` tokens and reports, per step, the entropy
and top-1 probability of the model's *raw* distribution (before any change the decoder makes): the
``entropy`` metric and ``harness show`` read them. Its output must depend only on the weights, the context
and the row's seed (``ctx.seeds``), never on which other rows share the batch; this one is deterministic and
decodes each row alone, without a KV cache, to stay short (the bundled decoders batch and cache).
"""

from __future__ import annotations

from harness import hookimpl
from harness.api import DecodeContext, Decoder, Generation, ModelHandle, inference
from harness.params import Param


class NoRepeatGreedy(Decoder):
    name = "example-no-repeat-greedy"
    description = "Greedy, except that the previous token is never picked again (stops at EOS)"
    version = "1"
    deterministic = True
    params = (Param("stop_at_eos", bool, default=True, help="end a row when the model picks EOS"),)

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
                    token = int(logits.argmax())
                    gen.output_ids.append(token)
                    ids.append(token)
                    if token == eos and self.option("stop_at_eos"):
                        break
                out.append(gen)
        return out


@hookimpl
def harness_register_decoders(register):
    register(NoRepeatGreedy)
