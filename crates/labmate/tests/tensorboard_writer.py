"""Event files written by the real writers (tensorboardX, and tensorboard's
own event writer and tensor protos), for the TensorBoard reader's tests.
Prints what it wrote as JSON, for the test to check value by value.

    python tensorboard_writer.py runs OUT   several runs under OUT
    python tensorboard_writer.py grow OUT   one run, in two parts: a line of
                                            JSON after each, and a line on
                                            stdin before the second
"""

import json
import math
import os
import struct
import sys
import time

import numpy as np
from tensorboardX import SummaryWriter
from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboardX.proto.tensor_pb2 import TensorProto
from tensorboardX.summary import hparams, pr_curve_raw

DT_FLOAT, DT_DOUBLE, DT_INT32, DT_INT64, DT_BFLOAT16, DT_HALF = 1, 2, 3, 9, 14, 19


def num(x):
    """A value as the record format writes it."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


class Expected:
    def __init__(self):
        self.runs = {}

    def run(self, name):
        return self.runs.setdefault(name, {"series": {}, "skipped": {}, "config": {}})

    def point(self, run, tag, step, time_, value):
        self.run(run)["series"].setdefault(tag, []).append([step, time_, num(value)])

    def skip(self, run, kind, tag):
        by_tag = self.run(run)["skipped"].setdefault(kind, {})
        by_tag[tag] = by_tag.get(tag, 0) + 1


def f32(x):
    return float(np.float32(x))


def scalar_tensor(step, tag, tensor, first):
    """A new-style scalar (the scalars plugin's tensor), its metadata with
    the tag's first value only, as TensorFlow's writer sends it."""
    value = Summary.Value(tag=tag, tensor=tensor)
    if first:
        value.metadata.CopyFrom(SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars")))
    return Summary(value=[value])


def tb_tensor(array):
    """tensorboard's own make_tensor_proto, as tensorboardX's message."""
    from tensorboard.util import tensor_util

    return TensorProto.FromString(tensor_util.make_tensor_proto(array).SerializeToString())


def bfloat16(x):
    """The bfloat16 nearest below x (truncated), as bits and as its value."""
    bits = struct.unpack("<I", struct.pack("<f", x))[0] >> 16
    return bits, struct.unpack("<f", struct.pack("<I", bits << 16))[0]


def write_runs(out):
    exp = Expected()
    t0 = time.time()

    # run_a: tensorboardX, old-style scalars with non-finite values, what
    # is skipped, hparams as Lightning writes them, new-style scalars.
    w = SummaryWriter(os.path.join(out, "run_a"))
    exp_hp, ssi, sei = hparams({"lr": 0.001, "batch_size": 32, "optimizer": "adam", "amp": True}, {"hp_metric": 0})
    for s in (exp_hp, ssi, sei):
        w.file_writer.add_summary(s)
    exp.run("run_a")["config"] = {"lr": 0.001, "batch_size": 32, "optimizer": "adam", "amp": True}
    specials = {10: float("nan"), 20: float("inf"), 30: float("-inf")}
    for step in range(50):
        t = t0 + step * 0.25
        loss = specials.get(step, 1.0 / (step + 1))
        w.add_scalar("loss", loss, step, walltime=t)
        exp.point("run_a", "loss", step, t, f32(loss))
        if step % 5 == 0:
            w.add_scalar("acc", step / 50, step, walltime=t)
            exp.point("run_a", "acc", step, t, f32(step / 50))
        if step % 10 == 0:
            w.add_histogram("weights", np.arange(10) * step, step, walltime=t)
            exp.skip("run_a", "histogram", "weights")
    w.add_text("note", "a first try", 0)
    exp.skip("run_a", "text", "note/text_summary")
    try:
        w.add_image("img", np.zeros((3, 4, 4)), 0)
        exp.skip("run_a", "image", "img")
    except ImportError:
        pass
    audio = Summary.Audio(sample_rate=8000, num_channels=1, length_frames=1, encoded_audio_string=b"RIFF")
    w.file_writer.add_summary(Summary(value=[Summary.Value(tag="sound", audio=audio)]), 0)
    exp.skip("run_a", "audio", "sound")
    z = np.zeros(3)
    w.file_writer.add_summary(pr_curve_raw("pr", z, z, z, z, z, z, num_thresholds=3), 0)
    exp.skip("run_a", "other:pr_curves", "pr")
    for step in range(5):
        t = t0 + 100 + step
        x = 0.1 * (step + 1)
        first = step == 0
        bits, bf = bfloat16(x)
        tensors = {
            "new/float": (tb_tensor(np.float32(x)), f32(x)),
            "new/double": (tb_tensor(np.float64(x)), x),
            "new/half": (tb_tensor(np.float16(x)), float(np.float16(x))),
            "new/int32": (tb_tensor(np.int32(step - 2)), step - 2),
            "new/int64": (tb_tensor(np.int64(2**40 + step)), float(2**40 + step)),
            "new/content_float": (TensorProto(dtype=DT_FLOAT, tensor_content=np.float32(x).tobytes()), f32(x)),
            "new/content_double": (TensorProto(dtype=DT_DOUBLE, tensor_content=np.float64(x).tobytes()), x),
            "new/content_half": (TensorProto(dtype=DT_HALF, tensor_content=np.float16(x).tobytes()), float(np.float16(x))),
            "new/bfloat16": (TensorProto(dtype=DT_BFLOAT16, half_val=[bits]), bf),
            "new/nan": (TensorProto(dtype=DT_FLOAT, float_val=[float("nan")]), float("nan")),
        }
        for tag, (tensor, want) in tensors.items():
            w.file_writer.add_summary(scalar_tensor(step, tag, tensor, first), step, t)
            exp.point("run_a", tag, step, t, want)
    # Two writers at once under run_a: add_scalars writes a folder per series.
    w.add_scalars("pair", {"x": 1.0, "y": 2.0}, 3, walltime=t0 + 200)
    exp.point("run_a/pair/x", "pair", 3, t0 + 200, 1.0)
    exp.point("run_a/pair/y", "pair", 3, t0 + 200, 2.0)
    w.close()

    # run_b: a run restarted, a second event file in the same folder.
    for part, steps in ((1, range(10)), (2, range(10, 20))):
        w = SummaryWriter(os.path.join(out, "run_b"), filename_suffix=".%d" % part)
        for step in steps:
            t = t0 + 300 + step
            w.add_scalar("loss", 5.0 - step * 0.125, step, walltime=t)
            exp.point("run_b", "loss", step, t, 5.0 - step * 0.125)
        w.close()

    # nested/deep/run_c: tensorboard's own writer and scalars metadata.
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.scalar import metadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    ew = EventFileWriter(os.path.join(out, "nested", "deep", "run_c"))
    for step in range(0, 30, 3):
        t = t0 + 400 + step
        value = summary_pb2.Summary.Value(tag="tb/loss", tensor=tensor_util.make_tensor_proto(np.float32(step * 0.5)))
        value.metadata.CopyFrom(metadata.create_summary_metadata(display_name="tb/loss", description=""))
        ew.add_event(event_pb2.Event(wall_time=t, step=step, summary=summary_pb2.Summary(value=[value])))
        exp.point("nested/deep/run_c", "tb/loss", step, t, step * 0.5)
    ew.close()

    add_times(out, exp)
    json.dump(exp.runs, sys.stdout)


def add_times(out, exp):
    """Each run's first and last event times, as tensorboard's loader reads them."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    for name, run in exp.runs.items():
        folder = os.path.join(out, name)
        times = []
        for f in sorted(os.listdir(folder)):
            if "tfevents" in f:
                times.extend(e.wall_time for e in EventFileLoader(os.path.join(folder, f)).Load())
        run["started_at"], run["ended_at"] = min(times), max(times)
        run["files"] = sorted(f for f in os.listdir(folder) if "tfevents" in f)


def grow(out):
    # tensorboardX's record writer itself: SummaryWriter queues events for
    # a thread, so only this one says when they are on disk.
    from tensorboardX.event_file_writer import EventsWriter
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.summary import scalar

    os.makedirs(out)
    w = EventsWriter(os.path.join(out, "events"))
    t0 = time.time()

    def part(steps):
        exp = Expected()
        for step in steps:
            t = t0 + step
            w.write_event(Event(wall_time=t, step=step, summary=scalar("loss", 1.0 / (step + 1))))
            exp.point(".", "loss", step, t, f32(1.0 / (step + 1)))
        w.flush()
        print(json.dumps(exp.runs["."]), flush=True)

    part(range(10))
    sys.stdin.readline()
    _, ssi, _ = hparams({"lr": 0.5}, {})
    w.write_event(Event(wall_time=t0 + 10, summary=ssi))
    part(range(10, 25))
    w.close()


if __name__ == "__main__":
    {"runs": write_runs, "grow": grow}[sys.argv[1]](sys.argv[2])
