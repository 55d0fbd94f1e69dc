"""One exception type whose message is a single human line.

The CLI and the pages print ``str(error)`` and nothing else, so every raise
site names the file or setting and what was expected.
"""


class SkinModelError(Exception):
    """A problem a user can fix: bad input, wrong folder, missing model."""


class ImageError(SkinModelError):
    """An image could not be decoded or is not acceptable."""


class DatasetError(SkinModelError):
    """A data folder does not have the expected ISIC layout."""


class RegistryError(SkinModelError):
    """A model version is missing, corrupt or not allowed."""


class Cancelled(SkinModelError):
    """A training run stopped because a cancel was requested; nothing was registered."""
