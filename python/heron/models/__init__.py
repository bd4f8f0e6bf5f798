"""heron.models: torchvision's image classification architectures over heron.nn, with the same module
and parameter names (a torchvision state dict loads unchanged) and the same initialisation.

    import heron.models
    model = heron.models.resnet18(weights="resnet18.safetensors").eval()
"""
from .resnet import (ResNet, BasicBlock, Bottleneck, resnet18, resnet34, resnet50, resnet101,  # noqa: F401
                     resnet152)
from .mobilenetv2 import MobileNetV2, InvertedResidual, Conv2dNormActivation, mobilenet_v2  # noqa: F401

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
           "MobileNetV2", "InvertedResidual", "Conv2dNormActivation", "mobilenet_v2"]
