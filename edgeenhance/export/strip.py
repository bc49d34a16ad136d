"""Strip the strings a .tflite file does not need to run (like TFLite's ``strip_strings`` tool).

The converter names every tensor after its PyTorch scope ('.../Sequential_blocks/.../Conv2d_0;...'):
18 KB in the 150 KB int8 student, for nothing a runtime reads. We drop those names, the model
description and the subgraph name; the graph, the weights, the quantization parameters, the
signature defs and the input/output tensor names (what apps look tensors up by) stay as they were.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _aligned_builder():
    import flatbuffers

    class AlignedBuilder(flatbuffers.Builder):
        """Packs byte vectors (buffer data) 16-byte aligned, as the schema asks (``force_align: 16``);
        the generated packer aligns them to 1 byte, which would leave weights misaligned. Equal
        scalar vectors are written once and shared (a flatbuffer is a DAG: any number of tables may
        point at one vector): per-channel int8 tensors each carry an int64 zero point per channel,
        all zeros, 8 bytes a channel that a 24-layer student repeated 3,000 times."""

        def __init__(self, size):
            super().__init__(size)
            self._shared = {}

        def CreateNumpyVector(self, x):  # noqa: N802 - flatbuffers API name
            if x.dtype != np.uint8:
                key = (x.dtype.str, x.tobytes())
                if key not in self._shared:
                    self._shared[key] = super().CreateNumpyVector(x)
                return self._shared[key]
            self.StartVector(1, x.size, 16)
            self.head = self.head - x.size
            self.Bytes[self.head:self.head + x.size] = x.tobytes()
            self.vectorNumElems = x.size
            return self.EndVector()

    return AlignedBuilder(1 << 16)


def strip_names(path: Path) -> int:
    """Rewrite ``path`` (atomically) without non-essential strings; returns the bytes saved."""
    from ai_edge_litert.tools import flatbuffer_utils

    from edgeenhance.fileio import atomic_path

    path = Path(path)
    before = path.read_bytes()
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(before))
    model.description = None
    for sg in model.subgraphs:
        sg.name = None
        keep = {int(i) for i in list(sg.inputs) + list(sg.outputs)}
        for i, t in enumerate(sg.tensors):
            if i not in keep:
                t.name = None
    for b in model.buffers:
        if b.data is not None and not isinstance(b.data, np.ndarray):
            b.data = np.frombuffer(bytes(b.data), np.uint8)
    builder = _aligned_builder()
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    after = bytes(builder.Output())
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(after)
    return len(before) - len(after)
