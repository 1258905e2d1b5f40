"""Recipes: the identity baseline and the paper's hyperfitting recipe."""

from harness import hookimpl
from harness_plugins.recipes.hyperfit import Hyperfit
from harness_plugins.recipes.none import NoFit


@hookimpl
def harness_register_recipes(register):
    register(NoFit)
    register(Hyperfit)
