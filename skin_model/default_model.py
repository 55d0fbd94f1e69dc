"""``make train-default``: train with the default settings and commit-ready files.

Writes ``model.keras``, ``metadata.json`` and ``MODEL_CARD.md`` into
``models/default``, which a fresh registry imports as version 1.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from skin_model import card, train
from skin_model.config import TrainConfig
from skin_model.errors import SkinModelError
from skin_model.registry import METADATA_FILE, MODEL_FILE, Registry, write_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", type=Path, default=Path("models/default"))
    parser.add_argument("--progress", type=Path)
    args = parser.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            version = train.run(
                args.data, TrainConfig(), progress=args.progress, registry=Registry(Path(scratch), seed_dir=None)
            )
            args.out.mkdir(parents=True, exist_ok=True)
            shutil.copy2(version.model_path, args.out / MODEL_FILE)
            metadata = dict(version.metadata)
            metadata["data"] = dict(metadata["data"], root="ISIC 9-class training set (shared/data/isic9)")
            write_json(args.out / METADATA_FILE, metadata)
            (args.out / "MODEL_CARD.md").write_text(card.render(metadata))
    except SkinModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}/{MODEL_FILE}, {METADATA_FILE} and MODEL_CARD.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
