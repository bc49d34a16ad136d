import warnings

import numpy as np
import pytest

from conftest import save
from edgeenhance.data.datasets import load_pairs
from edgeenhance.data.layouts import MSEC_UNDER, detect_layout, find_pairs, find_unpaired
from edgeenhance.errors import UserError

IMG = np.full((8, 8, 3), 0.5, np.float32)


def make(root, folders, names):
    for f in folders:
        for n in names:
            save(root / f / n, IMG)
    return root


@pytest.mark.parametrize("layout,folders", [("paired", ("input", "target")), ("lol", ("low", "high")),
                                            ("fivek", ("input", "expertC"))])
def test_good_layouts(tmp_path, layout, folders):
    make(tmp_path, folders, ["a.png", "b.png"])
    pairs = find_pairs(tmp_path, layout)
    assert [(p.name, t.name) for p, t in pairs] == [("a.png", "a.png"), ("b.png", "b.png")]
    assert detect_layout(tmp_path) == layout


def test_lol_subsets(tmp_path):
    make(tmp_path / "our485", ("low", "high"), ["1.png"])
    make(tmp_path / "eval15", ("low", "high"), ["2.png"])
    assert len(find_pairs(tmp_path, "lol")) == 2
    assert detect_layout(tmp_path) == "lol"


def test_msec(tmp_path):
    for tag in ("N1.5", "N1", "0", "P1", "P1.5"):
        save(tmp_path / "INPUT_IMAGES" / f"a0001-IMG_1_{tag}.JPG", IMG)
    save(tmp_path / "GT_IMAGES" / "a0001-IMG_1.jpg", IMG)
    assert len(find_pairs(tmp_path, "msec")) == 5
    under = find_pairs(tmp_path, "msec", exposures=MSEC_UNDER)
    assert sorted(p.stem for p, _ in under) == ["a0001-IMG_1_N1", "a0001-IMG_1_N1.5"]
    assert all(t.name == "a0001-IMG_1.jpg" for _, t in under)


def test_unpaired(tmp_path):
    make(tmp_path, ("trainA",), ["1.png", "2.png"])
    make(tmp_path, ("trainB",), ["3.png"])
    a, b = find_unpaired(tmp_path)
    assert len(a) == 2 and len(b) == 1


def test_missing_folder_is_named(tmp_path):
    make(tmp_path, ("input",), ["a.png"])
    with pytest.raises(UserError, match="target"):
        find_pairs(tmp_path, "paired")
    with pytest.raises(UserError, match="no such dataset folder"):
        find_pairs(tmp_path / "nothere", "paired")


def test_unmatched_pair_strict_and_skip(tmp_path):
    make(tmp_path, ("input", "target"), ["a.png"])
    save(tmp_path / "input" / "orphan.png", IMG)
    with pytest.raises(UserError, match="orphan.png"):
        find_pairs(tmp_path, "paired")
    with pytest.warns(UserWarning, match="orphan.png"):
        assert len(find_pairs(tmp_path, "paired", strict=False)) == 1


def test_non_image_file_is_named(tmp_path):
    make(tmp_path, ("input", "target"), ["a.png"])
    (tmp_path / "input" / "notes.txt").write_text("hi")
    with pytest.raises(UserError, match="notes.txt"):
        find_pairs(tmp_path, "paired")
    with pytest.warns(UserWarning):
        find_pairs(tmp_path, "paired", strict=False)


def test_corrupt_image_named_on_load(tmp_path):
    make(tmp_path, ("input", "target"), ["a.png", "b.png"])
    (tmp_path / "input" / "b.png").write_bytes(b"\x89PNG broken")
    pairs = find_pairs(tmp_path, "paired")
    with pytest.raises(UserError, match="b.png"):
        load_pairs(pairs)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert len(load_pairs(pairs, skip_bad=True)) == 1
    assert any("b.png" in str(x.message) for x in w)


def test_undetectable_layout(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(UserError, match="cannot tell the dataset layout"):
        detect_layout(tmp_path)
