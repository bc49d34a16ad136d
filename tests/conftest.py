import os

import numpy as np
import pytest
import torch

torch.set_num_threads(2)
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def save(path, arr):
    from edgeenhance.data.imageio import write_image

    write_image(path, arr)
    return path
