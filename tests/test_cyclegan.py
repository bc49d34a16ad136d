import numpy as np
import pytest
import torch
from torch import nn

from edgeenhance.models.cyclegan import ResnetGenerator
from edgeenhance.models.macs import count_macs, count_params
from edgeenhance.models.student import SIZES, student
from edgeenhance.train.cyclegan import build_cyclegan, cyclegan_step, make_optimizers
from edgeenhance.train.distill import distill, student_fidelity
from edgeenhance.train.gan import ImagePool, gan_loss
from edgeenhance.train.loop import linear_decay


def test_cyclegan_steps_change_weights_and_losses_finite():
    nets = build_cyclegan(ngf=4, n_blocks=1, ndf=4)
    opts = make_optimizers(nets)
    pools = {"X": ImagePool(4), "Y": ImagePool(4)}
    before = {k: [p.clone() for p in v.parameters()] for k, v in nets.items()}
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    for mode in ("lsgan", "vanilla"):
        losses = cyclegan_step(nets, opts, x, y, pools, gan_mode=mode)
        assert all(np.isfinite(v) for v in losses.values())
        assert {"G_adv", "F_adv", "cycle", "D_X", "D_Y"} <= set(losses)
    for k, v in nets.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[k], v.parameters())), k


def test_lr_schedule_matches_paper_recipe():
    f = linear_decay(200)
    assert [f(e) for e in (0, 50, 99, 100)] == [1.0, 1.0, 1.0, 1.0]
    assert f(150) == pytest.approx(0.5)
    assert f(200) == pytest.approx(0.0)
    assert all(f(e) > f(e + 1) for e in range(100, 200))
    nets = build_cyclegan(ngf=4, n_blocks=1, ndf=4)
    opt = make_optimizers(nets)["G"]
    assert opt.defaults["lr"] == 2e-4 and opt.defaults["betas"] == (0.5, 0.999)


def test_image_pool():
    pool = ImagePool(3, seed=0)
    first = torch.arange(3.0).view(3, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: returns what it got
    assert len(pool.images) == 3
    seen_old = False
    for i in range(20):
        new = torch.full((1, 1, 1, 1), 100.0 + i)
        out = pool.query(new)
        assert len(pool.images) == 3
        seen_old |= out.item() < 100
    assert seen_old  # some queries returned history instead of the new fake
    assert torch.equal(ImagePool(0).query(first), first)


def test_gan_losses():
    p = torch.zeros(2, 1, 4, 4)
    assert gan_loss(p, True).item() == pytest.approx(1.0)
    assert gan_loss(p, False).item() == pytest.approx(0.0)
    assert gan_loss(p, True, "vanilla").item() == pytest.approx(np.log(2), rel=1e-5)


def test_mac_count_matches_hand_count():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 2, 1, groups=8),
                        nn.ConvTranspose2d(8, 4, 2, 2), nn.Flatten(), nn.Linear(4 * 16 * 16, 10))
    hand = (16 * 16 * 8) * 3 * 9 + (8 * 8 * 8) * 1 * 9 + (8 * 8 * 8) * 4 * 4 + 4 * 16 * 16 * 10
    assert count_macs(net, (1, 3, 16, 16)) == hand


def test_teacher_and_student_sizes():
    teacher = ResnetGenerator()
    assert count_params(teacher) == 11_378_179  # the published 9-block generator
    t_macs = count_macs(teacher, (1, 3, 256, 256))
    for name in SIZES:
        s = student(name)
        assert t_macs / count_macs(s, (1, 3, 256, 256)) >= 25


ALLOWED = {nn.Conv2d, nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Sequential}
ALLOWED_FUNCS = {"add", "interpolate", "clamp", "getitem", "features", "getattr",
                 "permute", "cat", "unflatten", "flatten"}  # upsample2x: concatenate + reshape


@pytest.mark.parametrize("size", list(SIZES))
def test_student_uses_only_phone_friendly_ops(size):
    gm = torch.fx.symbolic_trace(student(size))
    mods = dict(gm.named_modules())
    for node in gm.graph.nodes:
        if node.op == "call_module":
            assert type(mods[node.target]) in ALLOWED, f"{node.target}: {type(mods[node.target]).__name__}"
        elif node.op in ("call_function", "call_method"):
            name = getattr(node.target, "__name__", str(node.target))
            assert name in ALLOWED_FUNCS, name
            if name == "interpolate":
                assert node.kwargs.get("mode") in ("nearest", "bilinear")
    assert not any(isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d)) for m in student(size).modules())


def test_upsample2x_is_nearest_neighbour():
    import torch.nn.functional as F

    from edgeenhance.models.student import upsample2x

    x = torch.rand(2, 5, 7, 9)
    assert torch.equal(upsample2x(x), F.interpolate(x, scale_factor=2.0, mode="nearest"))


@pytest.mark.parametrize("size", list(SIZES))
def test_student_runs_no_convolution_at_full_resolution(size):
    """Full-resolution layers gain little from int8 (see StudentGenerator); the output stays full size."""
    m, seen = student(size).eval(), []
    hooks = [c.register_forward_hook(lambda _m, _i, out: seen.append(tuple(out.shape[-2:])))
             for c in m.modules() if isinstance(c, nn.Conv2d)]
    with torch.no_grad():
        y = m(torch.rand(1, 3, 64, 96))
    for h in hooks:
        h.remove()
    assert y.shape == (1, 3, 64, 96) and len(seen) > 10
    assert max(h for h, _ in seen) <= 32 and max(w for _, w in seen) <= 48


def test_shuffle2x_is_depth_to_space():
    import torch.nn.functional as F

    from edgeenhance.models.student import shuffle2x

    top, bottom = torch.rand(2, 6, 5, 7), torch.rand(2, 6, 5, 7)
    # pixel_shuffle's channel order is (rgb, dy, dx); shuffle2x takes rows dy, channels (dx, rgb)
    packed = torch.stack([t.unflatten(1, (2, 3)) for t in (top, bottom)], 2)  # (N, dx, dy, rgb, h, w)
    ref = F.pixel_shuffle(packed.permute(0, 3, 2, 1, 4, 5).flatten(1, 3), 2)
    assert torch.equal(shuffle2x(top, bottom), ref)


def test_distillation_lowers_student_teacher_gap(tmp_path):
    torch.manual_seed(0)
    teacher = ResnetGenerator(ngf=4, n_blocks=1).eval()
    from edgeenhance.data.synth import render_single

    imgs = [render_single(i, "over", (32, 32)) for i in range(4)]  # photo-like: the student predicts 2x2 blocks
    s0 = student("tiny").eval()
    torch.manual_seed(0)
    before = student_fidelity(s0, teacher, imgs)
    r = distill(tmp_path, teacher, imgs, imgs, student_size="tiny", steps=60, batch=4, crop=32, lr=3e-3, val_every=30,
                progress=False, log=lambda *_: None)
    assert r["best_psnr_vs_teacher"] > before + 3
    assert (tmp_path / "student.safetensors").exists()


def _cyclegan_run(out, imgs, **kw):
    from edgeenhance.train.cyclegan import train_cyclegan

    return train_cyclegan(out, imgs[:3], imgs[3:], epochs=2, batch=2, crop=32, ngf=4, n_blocks=1, ndf=4, pool_size=3,
                          steps_per_epoch=3, progress=False, device="cpu", log=lambda *_: None, **kw)


def _over_images(n=6):
    from edgeenhance.data.synth import render_single

    return [render_single(i, "over", (40, 40)) for i in range(n)]


def test_cyclegan_stopped_mid_epoch_and_resumed_equals_the_uninterrupted_run(tmp_path):
    import signal

    from conftest import signal_on_call
    from edgeenhance.data.datasets import CropSampler
    from edgeenhance.train.common import TrainingState

    imgs = _over_images()
    whole = _cyclegan_run(tmp_path / "whole", imgs)["nets"]
    with signal_on_call(CropSampler, "batch", 4, signal.SIGINT):  # call 1 draws the sample grid's inputs
        r = _cyclegan_run(tmp_path / "cut", imgs)
    assert r["stopped"] == "SIGINT" and TrainingState(tmp_path / "cut" / "last.safetensors").step == 2
    resumed = _cyclegan_run(tmp_path / "cut", imgs, resume=True)
    assert resumed["stopped"] is None and len(resumed["history"]) == 2
    for k, net in whole.items():
        for (name, a), b in zip(net.state_dict().items(), resumed["nets"][k].state_dict().values()):
            assert torch.equal(a, b), f"{k}.{name}"
    # the epoch the stop split logs the same mean losses as the uninterrupted one
    assert (tmp_path / "cut" / "log.jsonl").read_text() == (tmp_path / "whole" / "log.jsonl").read_text()


def test_distill_stopped_and_resumed_equals_the_uninterrupted_run(tmp_path):
    import signal

    from conftest import signal_on_call
    from edgeenhance.data.datasets import CropSampler

    torch.manual_seed(0)
    teacher = ResnetGenerator(ngf=4, n_blocks=1).eval()
    imgs = _over_images(4)

    def run(out, **kw):
        return distill(out, teacher, imgs, imgs[:1], student_size="tiny", steps=6, batch=2, crop=32, val_every=100,
                       progress=False, log=lambda *_: None, **kw)

    whole = run(tmp_path / "whole")["student"]
    with signal_on_call(CropSampler, "batch", 3, signal.SIGTERM):
        r = run(tmp_path / "cut")
    assert r["stopped"] == "SIGTERM" and not (tmp_path / "cut" / "student.safetensors").exists()
    resumed = run(tmp_path / "cut", resume=True)
    assert len(resumed["history"]) == 3
    for (name, a), b in zip(whole.state_dict().items(), resumed["student"].state_dict().values()):
        assert torch.equal(a, b), name


def test_cyclegan_and_distill_check_resume_and_checkpoints_first(tmp_path, monkeypatch):
    from edgeenhance.errors import UserError
    from edgeenhance.models.registry import save_checkpoint
    from edgeenhance.train.cyclegan import train_cyclegan

    def no_work(*a, **kw):
        raise AssertionError("work started before the inputs were checked")

    import edgeenhance.train.cyclegan as cg
    import edgeenhance.train.distill as ds

    monkeypatch.setattr(cg, "build_cyclegan", no_work)
    monkeypatch.setattr(ds, "CropSampler", no_work)
    img = [np.zeros((8, 8, 3), np.float32)]
    with pytest.raises(UserError, match="no training state"):
        train_cyclegan(tmp_path / "none", img, img, resume=True)
    (tmp_path / "last.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="not a readable training state"):
        train_cyclegan(tmp_path, img, img, resume=True)
    with pytest.raises(UserError, match="not a readable training state"):
        distill(tmp_path, ResnetGenerator(ngf=4, n_blocks=1), img, img, resume=True)
    (tmp_path / "broken.pt").write_bytes(b"\x80\x02not safetensors")
    with pytest.raises(UserError, match="--teacher: .*broken.pt: not a readable safetensors"):
        distill(tmp_path / "d", str(tmp_path / "broken.pt"), img, img)
    save_checkpoint(tmp_path / "student.safetensors", student("tiny"))
    with pytest.raises(UserError, match="--teacher must be a CycleGAN generator"):
        distill(tmp_path / "d", str(tmp_path / "student.safetensors"), img, img)
    with pytest.raises(UserError, match="--init: a student with .* --student small"):
        distill(tmp_path / "d", ResnetGenerator(ngf=4, n_blocks=1), img, img, init=str(tmp_path / "student.safetensors"))
