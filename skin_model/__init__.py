"""skin_model: audit, balance, train, evaluate, register and serve a skin lesion CNN.

The package never imports Streamlit: the CLI, the app and the tests all call
the same functions.
"""

from skin_model.errors import SkinModelError

CLASSES: tuple[str, ...] = (
    "actinic keratosis",
    "basal cell carcinoma",
    "dermatofibroma",
    "melanoma",
    "nevus",
    "pigmented benign keratosis",
    "seborrheic keratosis",
    "squamous cell carcinoma",
    "vascular lesion",
)

__all__ = ["CLASSES", "SkinModelError"]
