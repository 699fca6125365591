"""Cut the small committed samples from the real data sets (run once; outputs are committed).

    python tests/data/make_samples.py ../shared/datasets
"""

import sys
from pathlib import Path

import numpy as np

SIZES = {"mnist": (3000, 1000), "fashion_mnist": (1000, 300)}


def main(source: Path) -> None:
    rng = np.random.default_rng(0)
    for name, (n_train, n_test) in SIZES.items():
        with np.load(source / f"{name}.npz") as full:
            train = np.sort(rng.choice(len(full["x_train"]), n_train, replace=False))
            test = np.sort(rng.choice(len(full["x_test"]), n_test, replace=False))
            np.savez_compressed(
                Path(__file__).parent / f"{name}.npz",
                x_train=full["x_train"][train], y_train=full["y_train"][train],
                x_test=full["x_test"][test], y_test=full["y_test"][test],
            )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
