"""The ``hrnet-zoo`` console script.

``hrnet-zoo --help`` and ``hrnet-zoo --version`` are answered here with the standard library alone, so they return
at once instead of after importing torch, torchvision and timm. Every command runs in :mod:`hrnet_zoo.cli`, whose
parser starts from the same :func:`top_level_parser` and :data:`COMMANDS` (tested to print the same help).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

__all__ = ["COMMANDS", "main", "package_version", "top_level_parser"]

PROG = "hrnet-zoo"
#: Each subcommand's one-line help, in the order ``hrnet-zoo --help`` lists them.
COMMANDS = {
    "list": "list the zoo by task (body, wholebody, face, hand, animal, fashion) with each tag's metric",
    "predict": "estimate every person's pose in images, videos or a webcam; writes COCO results "
    "(results.json, images.json) and drawn images/videos into a new run folder",
    "evaluate": "COCO keypoint AP with the original test protocol",
    "export": "export to ONNX or torch.export (.pt2)",
    "convert": "convert an original or OpenMMLab checkpoint to the Hub layout",
    "push": "upload a converted folder to the Hugging Face Hub",
}


def package_version() -> str:
    """The installed distribution's version."""
    try:
        return version("hrnet-zoo")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def top_level_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """``hrnet-zoo``'s parser without its subcommands, and the object that adds them."""
    parser = argparse.ArgumentParser(prog=PROG, description="HRNet human pose estimation models.")
    parser.add_argument("--version", action="version", version=f"{PROG} {package_version()}")
    return parser, parser.add_subparsers(dest="command", required=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hrnet-zoo``: the top-level help and version here, every command in :mod:`hrnet_zoo.cli`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--help"], ["-h"], ["--version"]):
        parser, commands = top_level_parser()
        for name, text in COMMANDS.items():
            commands.add_parser(name, help=text)
        parser.parse_args(args)  # prints the help or the version and exits with status 0
    return importlib.import_module("hrnet_zoo.cli").main(args)


if __name__ == "__main__":
    sys.exit(main())
