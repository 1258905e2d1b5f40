"""``hf-causal-lm``: any Hugging Face causal LM, by hub id or local directory (GGUF files too)."""

from __future__ import annotations


from harness.api import Codec, LoadContext, ModelHandle, ModelLoader, Param
from harness_plugins.models._hf_handle import DTYPES, load_causal_lm, load_tokenizer_codec, model_fingerprint, resolved_dtype_name


class HFCausalLM(ModelLoader):
    name = "hf-causal-lm"
    description = "Any Hugging Face causal LM by hub id (e.g. TinyLlama/TinyLlama_v1.1) or local directory."
    version = "1"
    requires_packages = ("tokenizers", "huggingface-hub")
    params = (
        Param("id", str, help="hub id or local directory"),
        Param("revision", str, default=None, help="hub revision (commit, tag or branch); pin it for reproducibility"),
        Param("dtype", str, default="auto", choices=DTYPES, help="auto: bfloat16 on a GPU that supports it, else float32"),
        Param("gguf_file", str, default=None, help="GGUF file name inside `id` (dequantised on load)"),
        Param("trust_remote_code", bool, default=False, help="allow model code from the hub"),
        Param("device_map", str, default=None,
              help='"auto": spread the model over every visible GPU of one process (70B generation); see docs/recipes.md'),
    )  # fmt: skip

    def fingerprint(self) -> str:
        """A local directory's file hashes, or a hub id's resolved commit (and its cached files' hashes)."""
        return model_fingerprint(self.option("id"), self.option("revision"))

    def resolved_settings(self, device: str) -> dict[str, str]:
        return {"dtype": resolved_dtype_name(self.option("dtype"), device)}

    def load_codec(self, ctx: LoadContext) -> Codec | None:
        """The tokenizer alone, from a local folder or the local hub cache (never the network: the full load does that)."""
        return load_tokenizer_codec(self.option("id"), self.option("revision"), self.option("trust_remote_code"),
                                    self.option("gguf_file"))  # fmt: skip

    def load(self, ctx: LoadContext) -> ModelHandle:
        return load_causal_lm(
            self.option("id"),
            device=ctx.device,
            dtype=self.option("dtype"),
            revision=self.option("revision"),
            trust_remote_code=self.option("trust_remote_code"),
            gguf_file=self.option("gguf_file"),
            device_map=self.option("device_map"),
        )

