"""Model loaders: Hugging Face causal LMs and the embedded offline default."""

from harness import hookimpl
from harness_plugins.models.embedded_smollm2 import EmbeddedSmolLM2
from harness_plugins.models.hf_causal_lm import HFCausalLM


@hookimpl
def harness_register_model_loaders(register):
    register(HFCausalLM)
    register(EmbeddedSmolLM2)
