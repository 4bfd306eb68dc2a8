"""Fit the small toy model in its own process (for the kill-and-resume test).

    python tests/fit_toy.py CHECKPOINT_DIR LOG_PATH EMBEDDINGS.npz [--hang-after-first-epoch]

With ``--hang-after-first-epoch`` the process sleeps after its first epoch (checkpoint
written), so a test can SIGKILL it there without racing the end of training.
"""

from __future__ import annotations

import logging
import sys
import time

import numpy as np
import torch

from crossglue.model import GlueModel
from crossglue.model.synthetic import add_representations, make_toy


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    ckpt, log_path, out = argv[:3]
    hang = "--hang-after-first-epoch" in argv[3:]

    def on_epoch_end(row: dict) -> None:
        if hang:
            print("HANGING", flush=True)
            time.sleep(600)

    toy = add_representations(make_toy(n_cells=60, n_genes=30, seed=1), n_comps=10)
    model = GlueModel.from_anndata(toy.domains, toy.edges, toy.specs, seed=0, device="cpu")
    model.fit(max_epochs=2, threads=1, checkpoint_dir=ckpt, log_path=log_path, on_epoch_end=on_epoch_end)
    np.savez(
        out,
        **{name.replace(":", "_"): model.encode_cells(name) for name in toy.domains},
        features=model.encode_features().to_numpy(),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
