"""Model loaders: Hugging Face causal LMs, the embedded offline default, and ImageGPT (images)."""

from harness.api import hookimpl
from harness_plugins.models.embedded_smollm2 import EmbeddedSmolLM2
from harness_plugins.models.hf_causal_lm import HFCausalLM
from harness_plugins.models.imagegpt import ImageGPT


@hookimpl
def harness_register_model_loaders(register):
    register(HFCausalLM)
    register(EmbeddedSmolLM2)
    register(ImageGPT)
