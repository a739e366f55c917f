"""Training recipes behind one interface: a recipe turns the training split into a Keras model.

`training.train.train` does what every recipe shares (read and split the data, choose the classes, set the
threshold on validation scores, export, write the card, evaluate external folders). A recipe only fits:
`Recipe.fit(FitInputs) -> Fitted` (training.recipes.base). To add one, write a module with a `RECIPE` and
list it below and among `train_model --head` choices (a test keeps the two equal).
"""

from training.recipes import finetune, logistic
from training.recipes.base import FitInputs, Fitted, Recipe

__all__ = ["DEFAULT_RECIPE", "RECIPES", "FitInputs", "Fitted", "Recipe", "get_recipe"]

RECIPES: dict[str, Recipe] = {recipe.name: recipe for recipe in (logistic.RECIPE, finetune.RECIPE)}
DEFAULT_RECIPE = logistic.RECIPE.name


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"Unknown head {name!r}: use {' or '.join(RECIPES)}.") from None
