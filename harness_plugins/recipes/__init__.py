"""Recipes: the identity baseline, the paper's hyperfitting, and the controls a reviewer asks for."""

from harness.api import hookimpl
from harness_plugins.recipes.finetune import EarlyStoppedFinetune
from harness_plugins.recipes.graft import Graft
from harness_plugins.recipes.hyperfit import Hyperfit
from harness_plugins.recipes.lora import LoRA
from harness_plugins.recipes.none import NoFit
from harness_plugins.recipes.pretrain import Pretrain


@hookimpl
def harness_register_recipes(register):
    register(NoFit)
    register(Hyperfit)
    register(EarlyStoppedFinetune)
    register(LoRA)
    register(Pretrain)
    register(Graft)
