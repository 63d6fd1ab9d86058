"""PyTorch mirrors of this project's networks, shared by the parity tests (tests/parity/, run with
Debian's python3-torch as /usr/bin/python3) and the side-by-side benchmarks (bench/*_torch.py).

- CifarResNet18: torchvision's ResNet-18 (BasicBlock, torchvision parameter names) with a base
  width, the CIFAR stem (3x3 conv, stride 1, no max-pool), any input channel count and no fc,
  initialised as torchvision's ResNet constructor does (zero_init_residual False).
- SplitBatchNorm: the official ReSSL small-dataset code's SplitBatchNorm (from the MoCo CIFAR demo).
- ProjectionNet: backbone + Linear-ReLU-Linear head, L2-normalised output (ReSSL's q and k).
"""
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet


class SplitBatchNorm(nn.BatchNorm2d):
    """BatchNorm over `num_splits` interleaved sub-batches in training; plain BN in eval."""

    def __init__(self, num_features, num_splits, **kw):
        super().__init__(num_features, **kw)
        self.num_splits = num_splits

    def forward(self, input):
        N, C, H, W = input.shape
        if self.training or not self.track_running_stats:
            running_mean_split = self.running_mean.repeat(self.num_splits)
            running_var_split = self.running_var.repeat(self.num_splits)
            outcome = F.batch_norm(
                input.view(-1, C * self.num_splits, H, W), running_mean_split, running_var_split,
                self.weight.repeat(self.num_splits), self.bias.repeat(self.num_splits),
                True, self.momentum, self.eps).view(N, C, H, W)
            self.running_mean.data.copy_(running_mean_split.view(self.num_splits, C).mean(dim=0))
            self.running_var.data.copy_(running_var_split.view(self.num_splits, C).mean(dim=0))
            return outcome
        return F.batch_norm(input, self.running_mean, self.running_var, self.weight, self.bias,
                            False, self.momentum, self.eps)


class CifarResNet18(ResNet):
    """torchvision's ResNet-18 with base width `width`, the CIFAR stem and no fc."""

    def __init__(self, width, in_channels=3, bn_splits=1):
        nn.Module.__init__(self)
        norm = (lambda c: SplitBatchNorm(c, bn_splits)) if bn_splits > 1 else nn.BatchNorm2d
        self._norm_layer = norm
        self.inplanes, self.dilation, self.groups, self.base_width = width, 1, 1, 64
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = norm(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        self.layer1 = self._make_layer(BasicBlock, width, 2)
        self.layer2 = self._make_layer(BasicBlock, 2 * width, 2, stride=2)
        self.layer3 = self._make_layer(BasicBlock, 4 * width, 2, stride=2)
        self.layer4 = self._make_layer(BasicBlock, 8 * width, 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


class ProjectionNet(nn.Module):
    """`normalize(head(backbone(x)))` with head Linear(8 * width, hidden) -> ReLU -> Linear."""

    def __init__(self, width, in_channels, hidden, out, bn_splits=1):
        super().__init__()
        self.backbone = CifarResNet18(width, in_channels, bn_splits)
        self.head = nn.Sequential(nn.Linear(8 * width, hidden), nn.ReLU(), nn.Linear(hidden, out))

    def forward(self, x):
        return F.normalize(self.head(self.backbone(x)), dim=1)
