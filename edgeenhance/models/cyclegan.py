"""CycleGAN networks (Zhu et al., 2017): ResNet generator and PatchGAN discriminator.

Images stay in [0, 1] at the interface; the generator maps to [-1, 1] inside as in the paper.
"""

from __future__ import annotations

from torch import nn

from edgeenhance.models.base import Enhancer, ModelContract


class ResnetBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim))

    def forward(self, x):
        return x + self.block(x)


class ResnetGenerator(Enhancer):
    """c7s1-ngf, d(2ngf), d(4ngf), n_blocks x R(4ngf), u(2ngf), u(ngf), c7s1-3 with tanh."""

    family = "resnet_generator"
    fixes = "over-exposed photos (CycleGAN teacher; distil it into a student for phones)"
    trainer = "edgeenhance.train.cyclegan:train_cyclegan"
    pad_multiple = 4  # two stride-2 stages

    def __init__(self, ngf: int = 64, n_blocks: int = 9):
        super().__init__()
        self.config = dict(ngf=ngf, n_blocks=n_blocks)
        self.stem = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True))
        self.down = nn.Sequential(
            nn.Conv2d(ngf, ngf * 2, 3, 2, 1), nn.InstanceNorm2d(ngf * 2), nn.ReLU(True),
            nn.Conv2d(ngf * 2, ngf * 4, 3, 2, 1), nn.InstanceNorm2d(ngf * 4), nn.ReLU(True))
        self.blocks = nn.Sequential(*[ResnetBlock(ngf * 4) for _ in range(n_blocks)])
        self.up = nn.Sequential(
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(ngf), nn.ReLU(True))
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh())

    def features(self, x):
        """Output plus the intermediate features used for distillation (down, mid, up)."""
        d = self.down(self.stem(x * 2 - 1))
        m = self.blocks(d)
        u = self.up(m)
        return (self.head(u) + 1) / 2, {"down": d, "mid": m, "up": u}

    def forward(self, x):
        return self.features(x)[0]


class PatchDiscriminator(ModelContract, nn.Module):
    """70x70 PatchGAN: C64-C128-C256-C512, then a 1-channel patch map of real/fake scores."""

    family = "patch_discriminator"
    fixes = "nothing: CycleGAN's discriminator, used in training"
    trainer = "edgeenhance.train.cyclegan:train_cyclegan"

    def __init__(self, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        layers = [nn.Conv2d(3, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1), nn.InstanceNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.net = nn.Sequential(*layers)
        self.config = dict(ndf=ndf, n_layers=n_layers)

    def forward(self, x):
        return self.net(x * 2 - 1)


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """Normal(0, 0.02) init as in the paper's code."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net
