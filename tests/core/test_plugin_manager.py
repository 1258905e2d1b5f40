"""Plugin discovery: bundled entry points, a real third-party distribution, clashes, broken plugins, disabling."""

from __future__ import annotations

import importlib
import sys
import textwrap
import types
from pathlib import Path

import pytest

from conftest import TINY_PLUGINS, tiny_benchmark, write_yaml
from harness.config import load_benchmark
from harness.errors import ConfigError, InputError, PluginError
from harness.plugin_manager import DISABLE_ENV, PluginOptions, load_plugins

BUNDLED = {
    "model_loader": ["hf-causal-lm", "embedded-smollm2", "imagegpt"],
    "dataset": ["embedded-wikipedia", "embedded-news", "embedded-fiction", "local-text", "hf-text",
                "digits", "fashion-mnist", "hf-images"],
    "recipe": ["none", "hyperfit", "finetune", "lora", "pretrain", "graft"],
    "decoder": [
        "greedy", "top-p", "top-k", "typical", "min-p", "temperature", "repetition-penalty", "no-repeat-ngram",
        "beam", "contrastive", "entropy-matched-temperature", "citation-blocked", "static-reweight",
    ],  # fmt: skip
    "metric": ["ttr", "self-bleu", "entropy", "ttr-curve", "seq-rep-n", "rep-n", "diversity", "distinct-n", "ngram-entropy",
               "dataset-bleu", "dataset-overlap", "dataset-overlap-max", "dataset-overlap-share", "mauve", "coherence",
               "tf-entropy", "tf-topk-prob", "perplexity", "top1-agreement", "judge-preference",
               "base-rank", "base-divergence", "layer-geometry",
               "row-repetition", "distinct-clusters", "pixel-mse", "psnr", "completion-diversity", "recognisability", "human-preference", "human-agreement", "lm-eval"],  # fmt: skip
}
BUNDLED_EP = {
    "model_loader": "models",
    "dataset": "datasets",
    "recipe": "recipes",
    "decoder": "decoders",
    "metric": "metrics",
}

LOUD_PLUGIN = '''
from harness import hookimpl
from harness.api import Decoder
from harness.params import Param


class LoudGreedy(Decoder):
    name = "loud-greedy"
    description = "Greedy, but shouting."
    params = (Param("volume", int, default=11, min=0),)


@hookimpl
def harness_register_decoders(register):
    register(LoudGreedy)
'''


@pytest.fixture
def fake_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Install a fake distribution on sys.path: a module plus a .dist-info with a `harness` entry point."""
    created: list[str] = []

    def make(dist: str, version: str, module: str, source: str, ep_name: str) -> Path:
        site = tmp_path / "site"
        site.mkdir(exist_ok=True)
        (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8")
        (info / "entry_points.txt").write_text(f"[harness]\n{ep_name} = {module}\n", encoding="utf-8")
        if str(site) not in sys.path:
            monkeypatch.syspath_prepend(str(site))
        importlib.invalidate_caches()
        created.append(module)
        return site

    yield make
    for module in created:
        sys.modules.pop(module, None)
    importlib.invalidate_caches()


def _names(loaded, kind: str) -> list[str]:
    return loaded.registry.names(kind)


# --------------------------------------------------------------------------- (a) bundled plugins


def test_bundled_plugins_are_discovered_through_entry_points():
    loaded = load_plugins()
    assert loaded.failures == []
    for kind, names in BUNDLED.items():
        assert _names(loaded, kind) == names, kind
        for name in names:
            reg = loaded.registry.get(kind, name)
            assert reg.kind == kind and reg.name == name
            assert reg.source.distribution == "hyperfit-harness"
            assert reg.source.version == "0.1.0"
            assert reg.source.plugin == f"hyperfit-harness:{BUNDLED_EP[kind]}"
            assert str(reg.source) == f"hyperfit-harness:{BUNDLED_EP[kind]} (hyperfit-harness 0.1.0)"
    plugins = {s.plugin for s in loaded.sources}
    assert {f"hyperfit-harness:{ep}" for ep in BUNDLED_EP.values()} <= plugins


def test_registry_get_unknown_name_suggests():
    loaded = load_plugins()
    with pytest.raises(InputError) as info:
        loaded.registry.get("decoder", "top_p")
    assert str(info.value) == 'unknown decoder "top_p" (did you mean "top-p"?)'
    assert loaded.registry.find("decoder", "top_p") is None


def test_describe_is_json_ready():
    reg = load_plugins().registry.get("decoder", "top-p")
    info = reg.describe()
    assert info["name"] == "top-p" and info["kind"] == "decoder"
    assert info["distribution"] == "hyperfit-harness" and info["distribution_version"] == "0.1.0"
    assert info["plugin"] == "hyperfit-harness:decoders"
    assert info["deterministic"] is False
    assert info["params"]["p"] == {
        "type": "float", "help": "nucleus mass", "default": 0.9, "required": False, "min": 0.0, "max": 1.0,
    }  # fmt: skip


# --------------------------------------------------------------------------- (b) a third-party distribution


def test_third_party_plugin_found_through_a_real_entry_point(fake_dist):
    fake_dist("my-ext-plugin", "0.3", "my_ext_plugin", LOUD_PLUGIN, "loud")
    loaded = load_plugins()
    assert loaded.failures == []
    reg = loaded.registry.get("decoder", "loud-greedy")
    assert reg.source.distribution == "my-ext-plugin"
    assert reg.source.version == "0.3"
    assert reg.source.plugin == "my-ext-plugin:loud"
    assert reg.cls.__module__ == "my_ext_plugin"
    # the bundled plugins are still there
    assert sorted(_names(loaded, "decoder")) == sorted(BUNDLED["decoder"] + ["loud-greedy"])


def test_third_party_plugin_is_usable_from_yaml(fake_dist, tmp_path):
    fake_dist("my-ext-plugin", "0.3", "my_ext_plugin", LOUD_PLUGIN, "loud")
    registry = load_plugins(PluginOptions(local_files=(str(TINY_PLUGINS),))).registry
    bench = tiny_benchmark(tmp_path, decoders={"loud": {"plugin": "loud-greedy", "volume": 3}})
    loaded = load_benchmark(write_yaml(tmp_path / "loud.yaml", bench), registry)
    assert loaded.decoders["loud"].plugin == "loud-greedy"
    assert loaded.decoders["loud"].params == {"volume": 3}
    assert loaded.decoders["loud"].registration.source.distribution == "my-ext-plugin"
    assert {c.decoder for c in loaded.cells} == {"loud"}

    bench["decoders"]["loud"]["volume"] = -1
    path = write_yaml(tmp_path / "quiet.yaml", bench)
    with pytest.raises(ConfigError) as info:
        load_benchmark(path, registry)
    [problem] = info.value.problems
    assert problem.startswith(f"{path}:")
    assert problem.endswith(": decoders.loud.volume: -1 must be at least 0")


def test_third_party_plugin_can_be_disabled_by_distribution_name(fake_dist, monkeypatch):
    fake_dist("my-ext-plugin", "0.3", "my_ext_plugin", LOUD_PLUGIN, "loud")
    monkeypatch.setenv(DISABLE_ENV, "my-ext-plugin")
    loaded = load_plugins()
    assert loaded.registry.find("decoder", "loud-greedy") is None
    assert "my_ext_plugin" not in sys.modules  # not even imported
    assert _names(loaded, "decoder") == BUNDLED["decoder"]


# --------------------------------------------------------------------------- (c) duplicate names

DUP_GREEDY = '''
from harness import hookimpl
from harness.api import Decoder


class MyGreedy(Decoder):
    name = "greedy"


@hookimpl
def harness_register_decoders(register):
    register(MyGreedy)
'''


def test_duplicate_name_names_both_sources(tmp_path):
    plugin = tmp_path / "dup_greedy.py"
    plugin.write_text(DUP_GREEDY, encoding="utf-8")
    with pytest.raises(PluginError) as info:
        load_plugins(PluginOptions(local_files=(str(plugin),)))
    assert str(info.value) == (
        'duplicate decoder name "greedy": registered by hyperfit-harness:decoders (hyperfit-harness 0.1.0) '
        f"and by file:{plugin}; disable one with --disable-plugin or HARNESS_DISABLE_PLUGINS"
    )
    assert info.value.exit_code == 2


def test_duplicate_resolved_by_disabling_the_bundled_entry_point(tmp_path):
    plugin = tmp_path / "dup_greedy.py"
    plugin.write_text(DUP_GREEDY, encoding="utf-8")
    loaded = load_plugins(PluginOptions(local_files=(str(plugin),), disabled=("hyperfit-harness:decoders",)))
    reg = loaded.registry.get("decoder", "greedy")
    assert reg.source.plugin == f"file:{plugin}"
    assert reg.cls.__name__ == "MyGreedy"
    assert loaded.registry.find("decoder", "top-p") is None


def test_duplicate_between_two_distributions(fake_dist):
    fake_dist("my-ext-plugin", "0.3", "my_ext_plugin", LOUD_PLUGIN, "loud")
    fake_dist("other-ext", "2.0", "other_ext_plugin", LOUD_PLUGIN, "also-loud")
    with pytest.raises(PluginError) as info:
        load_plugins()
    message = str(info.value)
    assert message.startswith('duplicate decoder name "loud-greedy": registered by ')
    assert "my-ext-plugin:loud (my-ext-plugin 0.3)" in message
    assert "other-ext:also-loud (other-ext 2.0)" in message


# --------------------------------------------------------------------------- (d) broken plugins

BROKEN = '''
raise ImportError("needs the frobnicate package")
'''


def test_broken_plugin_is_skipped_with_a_failure_message(fake_dist):
    fake_dist("broken-ext", "1.0", "broken_ext_plugin", BROKEN, "bad")
    loaded = load_plugins()
    assert loaded.failures == [
        "plugin broken-ext:bad (broken-ext 1.0) failed to import and was skipped: "
        "ImportError: needs the frobnicate package"
    ]
    # everything else still loads
    for kind, names in BUNDLED.items():
        assert _names(loaded, kind) == names
    assert "broken-ext:bad" not in {s.plugin for s in loaded.sources}


def test_broken_plugin_is_fatal_when_strict(fake_dist):
    fake_dist("broken-ext", "1.0", "broken_ext_plugin", BROKEN, "bad")
    with pytest.raises(PluginError) as info:
        load_plugins(PluginOptions(strict=True))
    assert str(info.value) == (
        "plugin broken-ext:bad (broken-ext 1.0) failed to import and was skipped: "
        "ImportError: needs the frobnicate package"
    )


def test_broken_plugin_is_not_imported_when_disabled_by_entry_point_name(fake_dist):
    fake_dist("broken-ext", "1.0", "broken_ext_plugin", BROKEN, "bad")
    loaded = load_plugins(PluginOptions(disabled=("bad",), strict=True))
    assert loaded.failures == []


def test_broken_local_file_is_skipped(tmp_path):
    plugin = tmp_path / "syntax_error.py"
    plugin.write_text("def (:\n", encoding="utf-8")
    loaded = load_plugins(PluginOptions(local_files=(str(plugin),)))
    [failure] = loaded.failures
    assert failure.startswith(f"plugin file:{plugin} failed to import and was skipped: SyntaxError: ")


def test_hook_that_raises_is_reported_and_strict_makes_it_fatal(tmp_path):
    plugin = tmp_path / "raising_hook.py"
    plugin.write_text(
        "from harness import hookimpl\n\n@hookimpl\ndef harness_register_decoders(register):\n"
        "    raise RuntimeError('boom')\n",
        encoding="utf-8",
    )
    loaded = load_plugins(PluginOptions(local_files=(str(plugin),)))
    assert loaded.failures == [f"plugin file:{plugin} failed in harness_register_decoders: RuntimeError: boom"]
    assert _names(loaded, "decoder") == BUNDLED["decoder"]
    with pytest.raises(PluginError, match="boom"):
        load_plugins(PluginOptions(local_files=(str(plugin),), strict=True))


def test_registering_a_non_subclass_is_a_plugin_error(tmp_path):
    plugin = tmp_path / "not_a_decoder.py"
    plugin.write_text(
        "from harness import hookimpl\n\n@hookimpl\ndef harness_register_decoders(register):\n    register(int)\n",
        encoding="utf-8",
    )
    with pytest.raises(PluginError) as info:
        load_plugins(PluginOptions(local_files=(str(plugin),)))
    assert str(info.value) == (
        f"plugin file:{plugin}: registered <class 'int'> as a decoder, but it is not a Decoder subclass"
    )


# --------------------------------------------------------------------------- (e) misspelt hook names

MISSPELT = '''
from harness import hookimpl
from harness.api import Decoder, Recipe


class Shout(Decoder):
    name = "shout"


class Nothing(Recipe):
    name = "nothing"
    trains = False


@hookimpl
def harness_register_decoder(register):  # singular: not a hook
    register(Shout)


@hookimpl
def harness_register_recipes(register):  # a valid hook in the same module
    register(Nothing)
'''


def test_misspelt_hook_skips_the_whole_plugin(tmp_path):
    plugin = tmp_path / "misspelt.py"
    plugin.write_text(MISSPELT, encoding="utf-8")
    loaded = load_plugins(PluginOptions(local_files=(str(plugin),)))
    [failure] = loaded.failures
    assert failure.startswith(f"plugin file:{plugin} skipped: unknown hook 'harness_register_decoder' in plugin")
    assert loaded.registry.find("decoder", "shout") is None
    assert loaded.registry.find("recipe", "nothing") is None
    assert f"file:{plugin}" not in {s.plugin for s in loaded.sources}
    # the bundled plugins are unaffected
    assert _names(loaded, "recipe") == BUNDLED["recipe"]


def test_misspelt_hook_is_fatal_when_strict(tmp_path):
    plugin = tmp_path / "misspelt.py"
    plugin.write_text(MISSPELT, encoding="utf-8")
    with pytest.raises(PluginError, match=r"unknown hook 'harness_register_decoder'"):
        load_plugins(PluginOptions(local_files=(str(plugin),), strict=True))


def test_misspelt_hook_in_an_entry_point_plugin(fake_dist):
    fake_dist("typo-ext", "0.1", "typo_ext_plugin", MISSPELT, "typo")
    loaded = load_plugins()
    [failure] = loaded.failures
    assert failure.startswith("plugin typo-ext:typo (typo-ext 0.1) skipped: unknown hook 'harness_register_decoder'")
    assert loaded.registry.find("recipe", "nothing") is None


BAD_SIGNATURE = '''
from harness import hookimpl


@hookimpl
def harness_register_decoders(reg):  # the hookspec's argument is `register`
    pass
'''


def test_hook_with_wrong_argument_name_is_skipped_not_a_crash(tmp_path):
    plugin = tmp_path / "bad_signature.py"
    plugin.write_text(BAD_SIGNATURE, encoding="utf-8")
    loaded = load_plugins(PluginOptions(local_files=(str(plugin),)))
    [failure] = loaded.failures
    assert failure.startswith(f"plugin file:{plugin} skipped: ")
    assert "reg" in failure
    assert _names(loaded, "decoder") == BUNDLED["decoder"]


# --------------------------------------------------------------------------- (f) disabling


def test_disable_registered_name_via_environment(monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "top-p")
    loaded = load_plugins()
    assert _names(loaded, "decoder") == [d for d in BUNDLED["decoder"] if d != "top-p"]
    assert _names(loaded, "metric") == BUNDLED["metric"]
    with pytest.raises(InputError, match='unknown decoder "top-p"'):
        loaded.registry.get("decoder", "top-p")


def test_disable_entry_point_name_removes_all_its_registrations(monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "decoders")
    loaded = load_plugins()
    assert _names(loaded, "decoder") == []
    assert "hyperfit-harness:decoders" not in {s.plugin for s in loaded.sources}
    for kind in ("model_loader", "dataset", "recipe", "metric"):
        assert _names(loaded, kind) == BUNDLED[kind]


def test_disable_env_is_comma_separated_and_merged_with_options(monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, " ttr , ,hyperfit-harness:recipes")
    options = PluginOptions(disabled=("hf-text",))
    assert options.all_disabled() == {"ttr", "hyperfit-harness:recipes", "hf-text"}
    loaded = load_plugins(options)
    assert _names(loaded, "metric") == [m for m in BUNDLED["metric"] if m != "ttr"]
    assert _names(loaded, "recipe") == []
    assert _names(loaded, "dataset") == [d for d in BUNDLED["dataset"] if d != "hf-text"]


def test_disable_whole_distribution():
    loaded = load_plugins(PluginOptions(disabled=("hyperfit-harness",)))
    assert list(loaded.registry) == []
    assert loaded.sources == []


def test_disable_unknown_name_is_harmless():
    loaded = load_plugins(PluginOptions(disabled=("no-such-plugin",)))
    assert loaded.failures == []
    assert _names(loaded, "decoder") == BUNDLED["decoder"]


# --------------------------------------------------------------------------- (g) local files


def test_local_plugin_file_registers_with_file_source():
    loaded = load_plugins(PluginOptions(local_files=(str(TINY_PLUGINS),)))
    assert loaded.failures == []
    reg = loaded.registry.get("model_loader", "tiny-llama")
    assert reg.source.plugin == f"file:{TINY_PLUGINS}"
    assert reg.source.distribution is None and reg.source.version is None
    assert str(reg.source) == f"file:{TINY_PLUGINS}"
    assert loaded.registry.get("decoder", "flaky").source == reg.source
    assert reg.describe()["distribution"] is None
    assert loaded.sources[-1].plugin == f"file:{TINY_PLUGINS}"


def test_local_plugin_missing_file_is_an_input_error(tmp_path):
    missing = tmp_path / "nope.py"
    with pytest.raises(InputError) as info:
        load_plugins(PluginOptions(local_files=(str(missing),)))
    assert str(info.value) == f"--plugins {missing}: no such file"
    assert type(info.value) is InputError  # not downgraded to a skipped-plugin warning


def test_local_plugin_missing_file_is_an_error_even_when_not_strict(tmp_path):
    with pytest.raises(InputError):
        load_plugins(PluginOptions(local_files=(str(tmp_path),)))  # a directory is not a file


# --------------------------------------------------------------------------- (h) the packages a plugin needs


def test_manifest_versions_cover_the_core_and_what_the_used_plugins_declare():
    from harness.manifest import core_packages, package_versions

    registry = load_plugins().registry
    lora, digits, greedy = (registry.get(k, n) for k, n in (("recipe", "lora"), ("dataset", "digits"), ("decoder", "greedy")))
    versions = package_versions([lora, digits.cls, greedy])  # Registrations, classes or config Components
    assert list(versions)[: len(core_packages())] == list(core_packages())
    assert {"hyperfit-harness", "torch", "transformers", "pluggy"} <= set(core_packages())
    assert "peft" in versions and "scikit-learn" in versions
    assert "gguf" not in versions and "mauve-text" not in versions, "only what the benchmark's plugins declare"
    assert versions["hyperfit-harness"] == "0.1.0"
    assert package_versions([lora, lora]) == package_versions([lora]), "each package once"


def test_requires_packages_must_be_a_tuple_of_names(tmp_path):
    plugin = tmp_path / "bad_needs.py"
    plugin.write_text(
        "from harness.api import Decoder, hookimpl\n\nclass Needy(Decoder):\n    name = 'needy'\n"
        "    requires_packages = 'peft'\n\n@hookimpl\ndef harness_register_decoders(register):\n    register(Needy)\n",
        encoding="utf-8",
    )
    with pytest.raises(PluginError, match=r"Needy.requires_packages must be a tuple of distribution names, got 'peft'"):
        load_plugins(PluginOptions(local_files=(str(plugin),)))


def test_a_hook_is_called_once_per_plugin_through_pluggy(tmp_path):
    """Two local files implement the same hook: each registration is attributed to its own file."""
    from harness.plugin_manager import call_hook, new_plugin_manager

    first, second = tmp_path / "first.py", tmp_path / "second.py"
    for path, name in ((first, "one"), (second, "two")):
        path.write_text(
            f"from harness.api import Decoder, hookimpl\n\nclass D(Decoder):\n    name = {name!r}\n\n"
            "@hookimpl\ndef harness_register_decoders(register):\n    register(D)\n",
            encoding="utf-8",
        )
    loaded = load_plugins(PluginOptions(local_files=(str(first), str(second))))
    assert loaded.registry.get("decoder", "one").source.plugin == f"file:{first}"
    assert loaded.registry.get("decoder", "two").source.plugin == f"file:{second}"

    from harness.api import hookimpl

    def plugin(letter: str) -> types.ModuleType:
        module = types.ModuleType(f"plugin_{letter}")

        @hookimpl
        def harness_register_decoders(register):
            register(letter)

        module.harness_register_decoders = harness_register_decoders
        return module

    pm = new_plugin_manager()
    a, b = plugin("a"), plugin("b")
    pm.register(a)
    pm.register(b)
    got: list[str] = []
    call_hook(pm, b, "harness_register_decoders", got.append)
    assert got == ["b"]
