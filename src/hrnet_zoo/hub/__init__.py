"""Weight files: downloads from the Hugging Face Hub and upstream URLs (:mod:`.download`), and publishing models
in the Hub layout (:mod:`.publish`, which builds on :mod:`hrnet_zoo.models`)."""

from .download import WeightsUnavailableError, cache_dir, download_hub_file, download_verified

__all__ = ["WeightsUnavailableError", "cache_dir", "download_hub_file", "download_verified"]
