"""heron.models: torchvision's architectures. Parameter counts and state_dict keys/shapes against
lists derived here from torchvision's architecture (independently of heron.models), torchvision's
initialisation, eval-mode forward shapes, loading `weights` (state dict, numpy, .safetensors path),
errors, a training step, nn.ReLU6 / nn.Hardtanh against numpy; and, when PyTorch is importable,
identical outputs (and training gradients) to the same architectures written in torch with the same
weights. torchvision is not needed: the torch reference models are defined in this file."""
import numpy as np
import pytest

import heron
import heron.models as models
from heron import nn

rng = np.random.default_rng(7)


def N(t):
    return np.asarray(t.detach().numpy() if hasattr(t, "detach") else t.numpy())


def count(model):
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------ expected state_dict structure
BN = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]


def bn_keys(prefix, c):
    shapes = [(c,), (c,), (c,), (c,), ()]
    return [(f"{prefix}.{k}", s) for k, s in zip(BN, shapes)]


def resnet_expected(blocks, bottleneck, num_classes=1000):
    """(key, shape) in torchvision's order for ResNet(BasicBlock/Bottleneck, blocks)."""
    out = [("conv1.weight", (64, 3, 7, 7))] + bn_keys("bn1", 64)
    inplanes = 64
    exp = 4 if bottleneck else 1
    for i, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks)):
        for j in range(n):
            p = f"layer{i + 1}.{j}"
            stride = 2 if (i > 0 and j == 0) else 1
            if bottleneck:
                out += [(f"{p}.conv1.weight", (planes, inplanes, 1, 1))] + bn_keys(f"{p}.bn1", planes)
                out += [(f"{p}.conv2.weight", (planes, planes, 3, 3))] + bn_keys(f"{p}.bn2", planes)
                out += [(f"{p}.conv3.weight", (planes * 4, planes, 1, 1))] + bn_keys(f"{p}.bn3", planes * 4)
            else:
                out += [(f"{p}.conv1.weight", (planes, inplanes, 3, 3))] + bn_keys(f"{p}.bn1", planes)
                out += [(f"{p}.conv2.weight", (planes, planes, 3, 3))] + bn_keys(f"{p}.bn2", planes)
            if j == 0 and (stride != 1 or inplanes != planes * exp):
                out += [(f"{p}.downsample.0.weight", (planes * exp, inplanes, 1, 1))]
                out += bn_keys(f"{p}.downsample.1", planes * exp)
            inplanes = planes * exp
    out += [("fc.weight", (num_classes, 512 * exp)), ("fc.bias", (num_classes,))]
    return out


MBV2_SETTING = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1)]


def mobilenet_expected(num_classes=1000):
    """(key, shape) in torchvision's order for mobilenet_v2() at width 1.0."""
    out = [("features.0.0.weight", (32, 3, 3, 3))] + bn_keys("features.0.1", 32)
    idx, cin = 1, 32
    for t, c, n, _ in MBV2_SETTING:
        for _ in range(n):
            p = f"features.{idx}.conv"
            hid = cin * t
            k = 0
            if t != 1:
                out += [(f"{p}.0.0.weight", (hid, cin, 1, 1))] + bn_keys(f"{p}.0.1", hid)
                k = 1
            out += [(f"{p}.{k}.0.weight", (hid, 1, 3, 3))] + bn_keys(f"{p}.{k}.1", hid)
            out += [(f"{p}.{k + 1}.weight", (c, hid, 1, 1))] + bn_keys(f"{p}.{k + 2}", c)
            idx, cin = idx + 1, c
    out += [(f"features.{idx}.0.weight", (1280, 320, 1, 1))] + bn_keys(f"features.{idx}.1", 1280)
    out += [("classifier.1.weight", (num_classes, 1280)), ("classifier.1.bias", (num_classes,))]
    return out


def structure(model):
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


# ------------------------------------------------------------------ counts and keys
@pytest.mark.parametrize("fn,expected", [
    (models.resnet18, 11_689_512), (models.resnet34, 21_797_672), (models.resnet50, 25_557_032),
    (models.mobilenet_v2, 3_504_872),
])
def test_parameter_counts(fn, expected):
    assert count(fn()) == expected


def test_parameter_counts_other_heads_and_widths():
    assert count(models.resnet18(num_classes=10)) == 11_689_512 - 513 * 1000 + 513 * 10
    assert count(models.mobilenet_v2(num_classes=10)) == 3_504_872 - 1281 * 1000 + 1281 * 10
    # width 0.5: stem 16 channels, last_channel stays 1280 (max(1.0, width_mult))
    m = models.mobilenet_v2(width_mult=0.5)
    assert m.last_channel == 1280
    assert tuple(m.features[0][0].weight.shape) == (16, 3, 3, 3)
    assert tuple(m.features[-1][0].weight.shape) == (1280, 160, 1, 1)
    # width 1.4: 1280 * 1.4 = 1792, stem 48 (32 * 1.4 = 44.8 -> 48)
    m = models.mobilenet_v2(width_mult=1.4, num_classes=3)
    assert m.last_channel == 1792
    assert tuple(m.features[0][0].weight.shape) == (48, 3, 3, 3)
    assert tuple(m.classifier[1].weight.shape) == (3, 1792)


def test_resnet18_state_dict_structure():
    assert structure(models.resnet18()) == resnet_expected([2, 2, 2, 2], False)


def test_resnet50_state_dict_structure():
    assert structure(models.resnet50(num_classes=5)) == resnet_expected([3, 4, 6, 3], True, 5)


def test_mobilenet_v2_state_dict_structure():
    sd = structure(models.mobilenet_v2())
    assert sd == mobilenet_expected()
    assert len(sd) == 314


def test_named_modules_and_classes():
    r = models.resnet18()
    assert [n for n, _ in r.named_children()] == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3",
                                                 "layer4", "avgpool", "fc"]
    assert isinstance(r, models.ResNet) and isinstance(r.layer3[0], models.BasicBlock)
    assert r.layer1[0].downsample is None and r.layer2[0].downsample is not None
    m = models.mobilenet_v2()
    assert [n for n, _ in m.named_children()] == ["features", "classifier"]
    assert len(m.features) == 19
    assert isinstance(m, models.MobileNetV2) and isinstance(m.features[5], models.InvertedResidual)
    assert isinstance(m.features[0][2], nn.ReLU6) and isinstance(m.classifier[0], nn.Dropout)
    assert m.classifier[0].p == 0.2
    assert [b.use_res_connect for b in m.features[1:18]] == [
        False, False, True, False, True, True, False, True, True, True, False, True, True, False, True, True, False]
    assert m.features[2].conv[1][0].groups == 96  # depthwise


# ------------------------------------------------------------------ initialisation
def test_resnet_init():
    heron.manual_seed(1)
    r = models.resnet18()
    w = N(r.layer4[1].conv2.weight)  # fan_out = 512 * 9
    assert abs(w.mean()) < 2e-3
    assert abs(w.std() / np.sqrt(2.0 / (512 * 9)) - 1) < 0.02
    w = N(r.conv1.weight)  # fan_out = 64 * 49
    assert abs(w.std() / np.sqrt(2.0 / (64 * 49)) - 1) < 0.05
    for m in r.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert (N(m.weight) == 1).all() and (N(m.bias) == 0).all()
            assert (N(m.running_mean) == 0).all() and (N(m.running_var) == 1).all()
    bound = 1 / np.sqrt(512)  # fc keeps Linear's default init
    fw = N(r.fc.weight)
    assert np.abs(fw).max() <= bound and np.abs(fw).max() > 0.9 * bound
    assert (N(r.layer1[0].bn2.weight) == 1).all()
    z = models.resnet18(zero_init_residual=True)
    assert all((N(b.bn2.weight) == 0).all() for b in [z.layer1[0], z.layer2[1], z.layer4[1]])
    assert (N(z.layer1[0].bn1.weight) == 1).all()
    z = models.resnet50(zero_init_residual=True)
    assert (N(z.layer3[2].bn3.weight) == 0).all() and (N(z.layer3[2].bn2.weight) == 1).all()


def test_mobilenet_v2_init():
    heron.manual_seed(2)
    m = models.mobilenet_v2()
    w = N(m.features[-1][0].weight)  # 1x1 conv, fan_out = 1280
    assert abs(w.std() / np.sqrt(2.0 / 1280) - 1) < 0.02
    w = N(m.features[7].conv[1][0].weight)  # depthwise (192, 1, 3, 3): PyTorch's fan_out = 192 * 9 (not / groups)
    assert abs(w.std() / np.sqrt(2.0 / (192 * 9)) - 1) < 0.1
    cw = N(m.classifier[1].weight)
    assert abs(cw.std() / 0.01 - 1) < 0.02 and (N(m.classifier[1].bias) == 0).all()
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            assert (N(mod.weight) == 1).all() and (N(mod.bias) == 0).all()


def test_init_is_seeded():
    heron.manual_seed(3)
    a = models.mobilenet_v2(num_classes=4, width_mult=0.35)
    heron.manual_seed(3)
    b = models.mobilenet_v2(num_classes=4, width_mult=0.35)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(N(va), N(vb))


# ------------------------------------------------------------------ forward
def randomize_bn(model, seed):
    """Non-trivial running statistics and affine parameters, so eval-mode BN matters."""
    g = np.random.default_rng(seed)
    sd = {}
    for k, v in model.state_dict().items():
        a = N(v)
        if k.endswith("running_mean") or k.endswith("bn1.bias") or k.endswith(".bias"):
            a = g.normal(0, 0.1, a.shape).astype(a.dtype)
        elif k.endswith("running_var"):
            a = g.uniform(0.5, 1.5, a.shape).astype(a.dtype)
        elif k.endswith("weight") and a.ndim == 1:
            a = g.uniform(0.5, 1.5, a.shape).astype(a.dtype)
        sd[k] = a
    model.load_state_dict(sd)
    return model


@pytest.mark.parametrize("fn", [models.resnet18, models.mobilenet_v2])
@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (2, 3, 33, 47)])
def test_eval_forward_shapes(fn, shape):
    m = fn(num_classes=7).eval()
    with heron.no_grad():
        y = m(heron.tensor(rng.standard_normal(shape).astype(np.float32)))
    assert tuple(y.shape) == (shape[0], 7) and y.dtype == heron.float32
    assert np.isfinite(N(y)).all()


def test_eval_forward_float64_and_batch_independence():
    m = randomize_bn(models.mobilenet_v2(num_classes=5, width_mult=0.5), 4).eval().to(heron.float64)
    x = rng.standard_normal((3, 3, 40, 40))
    with heron.no_grad():
        y = N(m(heron.tensor(x)))
        y1 = N(m(heron.tensor(x[1:2])))
    assert y.dtype == np.float64
    np.testing.assert_allclose(y[1:2], y1, rtol=1e-10, atol=1e-12)  # eval: samples are independent


def test_eval_forward_non_contiguous_input():
    m = randomize_bn(models.resnet18(num_classes=4), 16).eval()
    x = rng.standard_normal((2, 3, 40, 36)).astype(np.float32)
    base = heron.tensor(np.ascontiguousarray(x.transpose(0, 1, 3, 2)))  # (2, 3, 36, 40)
    view = base.transpose(2, 3)                                           # x's values, strided
    assert not view.is_contiguous()
    sliced = heron.tensor(np.concatenate([x, x], axis=3))[:, :, :, ::2]   # every other column
    with heron.no_grad():
        want = N(m(heron.tensor(x)))
        np.testing.assert_allclose(N(m(view)), want, rtol=1e-5, atol=1e-5)
        contiguous = heron.tensor(np.ascontiguousarray(np.concatenate([x, x], axis=3)[:, :, :, ::2]))
        np.testing.assert_allclose(N(m(sliced)), N(m(contiguous)), rtol=1e-5, atol=1e-5)


def test_eval_is_deterministic_and_dropout_off():
    m = models.mobilenet_v2(num_classes=3).eval()
    x = heron.randn(2, 3, 32, 32)
    with heron.no_grad():
        np.testing.assert_array_equal(N(m(x)), N(m(x)))


def test_basic_block_matches_numpy():
    """One BasicBlock with a downsample, in eval mode, against a numpy reference."""
    blk = models.BasicBlock(4, 6, stride=2, downsample=nn.Sequential(nn.Conv2d(4, 6, 1, 2, bias=False),
                                                                     nn.BatchNorm2d(6)))
    randomize_bn(blk, 5).eval().to(heron.float64)
    sd = {k: N(v) for k, v in blk.state_dict().items()}
    x = rng.standard_normal((2, 4, 7, 7))

    def conv(x, w, stride, pad):
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        co, ci, kh, kw = w.shape
        ho = (x.shape[2] - kh) // stride + 1
        wo = (x.shape[3] - kw) // stride + 1
        out = np.zeros((x.shape[0], co, ho, wo))
        for i in range(kh):
            for j in range(kw):
                patch = x[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride]
                out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
        return out

    def bn(x, p):
        s = sd[p + ".weight"] / np.sqrt(sd[p + ".running_var"] + 1e-5)
        return (x - sd[p + ".running_mean"][:, None, None]) * s[:, None, None] + sd[p + ".bias"][:, None, None]

    h = np.maximum(bn(conv(x, sd["conv1.weight"], 2, 1), "bn1"), 0)
    h = bn(conv(h, sd["conv2.weight"], 1, 1), "bn2")
    want = np.maximum(h + bn(conv(x, sd["downsample.0.weight"], 2, 0), "downsample.1"), 0)
    with heron.no_grad():
        got = N(blk(heron.tensor(x)))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_inverted_residual_residual_path():
    blk = models.InvertedResidual(8, 8, 1, expand_ratio=3)
    assert blk.use_res_connect and len(blk.conv) == 4
    randomize_bn(blk, 6).eval().to(heron.float64)
    x = heron.tensor(rng.standard_normal((1, 8, 5, 5)))
    with heron.no_grad():
        np.testing.assert_allclose(N(blk(x)), N(x) + N(blk.conv(x)), rtol=1e-12, atol=1e-12)
    assert not models.InvertedResidual(8, 16, 1, 6).use_res_connect
    assert not models.InvertedResidual(8, 8, 2, 6).use_res_connect
    assert len(models.InvertedResidual(8, 8, 1, 1).conv) == 3


# ------------------------------------------------------------------ weights
def test_weights_state_dict_and_numpy():
    heron.manual_seed(8)
    a = randomize_bn(models.resnet18(num_classes=6), 9).eval()
    x = heron.randn(1, 3, 32, 32)
    with heron.no_grad():
        ya = N(a(x))
        b = models.resnet18(num_classes=6, weights=a.state_dict()).eval()
        np.testing.assert_array_equal(N(b(x)), ya)
        c = models.resnet18(num_classes=6, weights={k: N(v) for k, v in a.state_dict().items()}).eval()
        np.testing.assert_array_equal(N(c(x)), ya)
    assert int(N(c.bn1.num_batches_tracked)) == int(N(a.bn1.num_batches_tracked))


def test_weights_safetensors_path(tmp_path):
    heron.manual_seed(10)
    a = randomize_bn(models.mobilenet_v2(num_classes=4, width_mult=0.5), 11).eval()
    path = tmp_path / "mbv2.safetensors"
    heron.save(a.state_dict(), str(path))
    x = heron.randn(2, 3, 32, 32)
    with heron.no_grad():
        for w in (str(path), path):  # str or os.PathLike
            b = models.mobilenet_v2(num_classes=4, width_mult=0.5, weights=w).eval()
            np.testing.assert_array_equal(N(b(x)), N(a(x)))


def test_weights_errors(tmp_path):
    sd = models.resnet18(num_classes=3).state_dict()
    with pytest.raises(TypeError, match="resnet18: weights must be"):
        models.resnet18(weights=42)
    with pytest.raises(RuntimeError, match="size mismatch for fc.weight"):
        models.resnet18(num_classes=4, weights=sd)
    sd.pop("layer2.0.downsample.0.weight")
    with pytest.raises(RuntimeError, match="Missing key.*layer2.0.downsample.0.weight"):
        models.resnet18(num_classes=3, weights=sd)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        models.mobilenet_v2(num_classes=3, weights=dict(models.mobilenet_v2(num_classes=3).state_dict(),
                                                        extra=heron.zeros(1)))
    with pytest.raises(Exception):
        models.mobilenet_v2(weights=str(tmp_path / "missing.safetensors"))


# ------------------------------------------------------------------ errors
def test_constructor_errors():
    with pytest.raises(ValueError, match="groups=1 and base_width=64"):
        models.BasicBlock(4, 4, groups=2)
    with pytest.raises(NotImplementedError, match="Dilation"):
        models.BasicBlock(4, 4, dilation=2)
    with pytest.raises(ValueError, match="4-element"):
        models.ResNet(models.BasicBlock, [2, 2, 2])
    with pytest.raises(ValueError, match="replace_stride_with_dilation"):
        models.ResNet(models.Bottleneck, [1, 1, 1, 1], replace_stride_with_dilation=[False])
    with pytest.raises(ValueError, match="stride should be 1 or 2 instead of 3"):
        models.InvertedResidual(8, 8, 3, 6)
    with pytest.raises(ValueError, match="inverted_residual_setting"):
        models.MobileNetV2(inverted_residual_setting=[[1, 16, 1]])
    with pytest.raises(ValueError, match="inverted_residual_setting"):
        models.MobileNetV2(inverted_residual_setting=[])


def test_forward_errors():
    m = models.resnet18(num_classes=2).eval()
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        m(heron.zeros(1, 4, 32, 32))
    with pytest.raises(Exception):
        models.mobilenet_v2(num_classes=2).eval()(heron.zeros(1, 3, 32, 32, dtype=heron.float64))


def test_dilated_resnet50_keeps_resolution():
    m = models.resnet50(num_classes=2, replace_stride_with_dilation=[False, True, True]).eval()
    # torchvision: a stage's first block keeps the previous dilation, the others get the new one
    assert m.layer3[0].conv2.dilation == (1, 1) and m.layer3[1].conv2.dilation == (2, 2)
    assert m.layer4[0].conv2.dilation == (2, 2) and m.layer4[0].conv2.stride == (1, 1)
    assert m.layer4[1].conv2.dilation == (4, 4) and m.layer4[0].downsample[0].stride == (1, 1)
    feats = {}

    def hook(mod, args, out):
        feats["l4"] = tuple(out.shape)

    m.layer4.register_forward_hook(hook)
    with heron.no_grad():
        assert tuple(m(heron.randn(1, 3, 64, 64)).shape) == (1, 2)
    assert feats["l4"] == (1, 2048, 8, 8)


# ------------------------------------------------------------------ training
def test_training_step_updates_everything():
    heron.manual_seed(12)
    m = models.mobilenet_v2(num_classes=3, width_mult=0.35).train()
    before = {k: N(v).copy() for k, v in m.state_dict().items()}
    opt = heron.optim.SGD(m.parameters(), lr=0.1)
    x = heron.randn(4, 3, 32, 32)
    loss = nn.functional.cross_entropy(m(x), heron.tensor(np.array([0, 1, 2, 1])))
    loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None, name
        g = N(p.grad)
        assert np.isfinite(g).all() and np.abs(g).max() > 0, name
    opt.step()
    after = m.state_dict()
    assert int(N(after["features.3.conv.1.1.num_batches_tracked"])) == 1
    assert not np.array_equal(N(after["features.0.1.running_mean"]), before["features.0.1.running_mean"])
    assert not np.array_equal(N(after["classifier.1.weight"]), before["classifier.1.weight"])


def test_resnet_gradient_finite_difference():
    """float64 central differences of a tiny ResNet (one BasicBlock per stage) in train mode."""
    heron.manual_seed(13)
    m = models.ResNet(models.BasicBlock, [1, 1, 1, 1], num_classes=2).to(heron.float64).train()
    x = heron.tensor(rng.standard_normal((2, 3, 32, 32)))
    r = rng.standard_normal((2, 2))

    def loss():
        return float(N((m(x) * heron.tensor(r)).sum()))

    out = (m(x) * heron.tensor(r)).sum()
    out.backward()
    for name in ["conv1.weight", "layer2.0.bn1.weight", "layer3.0.downsample.0.weight", "fc.bias"]:
        p = m.get_parameter(name)
        flat = N(p).reshape(-1)
        g = N(p.grad).reshape(-1)
        for i in rng.choice(flat.size, min(3, flat.size), replace=False):
            orig = flat[i]
            vals = []
            for d in (1e-6, -1e-6):
                arr = N(p).copy()
                arr.reshape(-1)[i] = orig + d
                with heron.no_grad():
                    p.copy_(heron.tensor(arr))
                vals.append(loss())
            arr = N(p).copy()
            arr.reshape(-1)[i] = orig
            with heron.no_grad():
                p.copy_(heron.tensor(arr))
            fd = (vals[0] - vals[1]) / 2e-6
            assert abs(fd - g[i]) <= 1e-5 * max(1.0, abs(fd)), (name, i, fd, g[i])


# ------------------------------------------------------------------ ReLU6 / Hardtanh
def test_relu6_hardtanh_match_numpy():
    x = rng.uniform(-8, 8, (4, 5)).astype(np.float64)
    x[0, :3] = [0.0, 6.0, -1.0]
    t = heron.tensor(x)
    np.testing.assert_array_equal(N(nn.ReLU6()(t)), np.clip(x, 0, 6))
    np.testing.assert_array_equal(N(nn.Hardtanh()(t)), np.clip(x, -1, 1))
    np.testing.assert_array_equal(N(nn.Hardtanh(-2.5, 0.5)(t)), np.clip(x, -2.5, 0.5))
    np.testing.assert_array_equal(N(nn.functional.hardtanh(t, -3, 3)), np.clip(x, -3, 3))
    np.testing.assert_array_equal(N(nn.functional.relu6(t)), np.clip(x, 0, 6))
    f32 = nn.ReLU6()(heron.tensor(x.astype(np.float32)))
    assert f32.dtype == heron.float32
    assert repr(nn.ReLU6(inplace=True)) == "ReLU6(inplace=True)"
    assert repr(nn.Hardtanh(-2.0, 2.0)) == "Hardtanh(min_val=-2.0, max_val=2.0)"
    with pytest.raises(ValueError, match="min_val"):
        nn.Hardtanh(1.0, -1.0)
    with pytest.raises(ValueError, match="min_val"):
        nn.functional.hardtanh(t, 1.0, 0.0)


def test_relu6_gradient():
    x = rng.uniform(-3, 9, (3, 7))
    x = x[:, ::2]  # non-contiguous
    t = heron.tensor(np.ascontiguousarray(x)).requires_grad_()
    (nn.ReLU6()(t) * heron.tensor(np.full(x.shape, 2.0))).sum().backward()
    np.testing.assert_array_equal(N(t.grad), np.where((x > 0) & (x < 6), 2.0, 0.0))


# ------------------------------------------------------------------ PyTorch parity
@pytest.fixture(scope="module")
def torch_models():
    """The torchvision architectures written in torch (torchvision itself is not needed)."""
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # torch's own pool next to heron's makes tiny float64 convs take seconds

    class TBasic(tnn.Module):
        def __init__(self, cin, c, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(cin, c, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(c)
            self.relu = tnn.ReLU(inplace=True)
            self.conv2 = tnn.Conv2d(c, c, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(c)
            self.downsample = None
            if stride != 1 or cin != c:
                self.downsample = tnn.Sequential(tnn.Conv2d(cin, c, 1, stride, bias=False), tnn.BatchNorm2d(c))

        def forward(self, x):
            idt = x if self.downsample is None else self.downsample(x)
            return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + idt)

    class TResNet18(tnn.Module):
        def __init__(self, num_classes):
            super().__init__()
            self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = tnn.BatchNorm2d(64)
            self.relu = tnn.ReLU(inplace=True)
            self.maxpool = tnn.MaxPool2d(3, 2, 1)
            cin = 64
            for i, c in enumerate((64, 128, 256, 512)):
                s = 1 if i == 0 else 2
                setattr(self, f"layer{i + 1}", tnn.Sequential(TBasic(cin, c, s), TBasic(c, c, 1)))
                cin = c
            self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
            self.fc = tnn.Linear(512, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    def cna(cin, cout, k=3, s=1, g=1):
        return tnn.Sequential(tnn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=g, bias=False), tnn.BatchNorm2d(cout),
                              tnn.ReLU6(inplace=True))

    class TInv(tnn.Module):
        def __init__(self, cin, cout, s, t):
            super().__init__()
            hid = cin * t
            layers = [cna(cin, hid, 1)] if t != 1 else []
            layers += [cna(hid, hid, 3, s, hid), tnn.Conv2d(hid, cout, 1, 1, 0, bias=False), tnn.BatchNorm2d(cout)]
            self.conv = tnn.Sequential(*layers)
            self.res = s == 1 and cin == cout

        def forward(self, x):
            return x + self.conv(x) if self.res else self.conv(x)

    class TMobileNetV2(tnn.Module):
        def __init__(self, num_classes):
            super().__init__()
            feats, cin = [cna(3, 32, 3, 2)], 32
            for t, c, n, s in MBV2_SETTING:
                for i in range(n):
                    feats.append(TInv(cin, c, s if i == 0 else 1, t))
                    cin = c
            feats.append(cna(cin, 1280, 1))
            self.features = tnn.Sequential(*feats)
            self.classifier = tnn.Sequential(tnn.Dropout(0.2), tnn.Linear(1280, num_classes))

        def forward(self, x):
            x = tnn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
            return self.classifier(torch.flatten(x, 1))

    yield torch, {"resnet18": (TResNet18, models.resnet18), "mobilenet_v2": (TMobileNetV2, models.mobilenet_v2)}
    torch.set_num_threads(threads)


def to_torch_sd(torch, model):
    return {k: torch.from_numpy(N(v).copy()) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_torch_same_keys_and_outputs(torch_models, name):
    torch, table = torch_models
    tcls, hfn = table[name]
    torch.manual_seed(0)
    tm = tcls(10)
    heron.manual_seed(0)
    hm = randomize_bn(hfn(num_classes=10), 14)
    assert structure(hm) == [(k, tuple(v.shape)) for k, v in tm.state_dict().items()]
    # heron -> torch, and torch (with its own random weights) -> heron
    tm.load_state_dict(to_torch_sd(torch, hm))
    tm.eval()
    hm.eval()
    x = rng.standard_normal((2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        want = tm(torch.from_numpy(x)).numpy()
    with heron.no_grad():
        got = N(hm(heron.tensor(x)))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)

    tm2 = tcls(10)
    with torch.no_grad():
        for k, v in tm2.state_dict().items():
            if k.endswith("running_var"):
                v.uniform_(0.5, 1.5)
            elif k.endswith("running_mean"):
                v.normal_(0, 0.1)
    hm2 = hfn(num_classes=10, weights={k: v.numpy() for k, v in tm2.state_dict().items()}).eval()
    tm2.eval()
    with torch.no_grad():
        want = tm2(torch.from_numpy(x)).numpy()
    with heron.no_grad():
        got = N(hm2(heron.tensor(x)))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_torch_resnet18_224(torch_models):
    """The one full-size forward: 1x3x224x224 through resnet18 with torch's initial weights."""
    torch, table = torch_models
    tcls, _ = table["resnet18"]
    torch.manual_seed(1)
    tm = tcls(1000).eval()
    hm = models.resnet18(weights={k: v.numpy() for k, v in tm.state_dict().items()}).eval()
    x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        want = tm(torch.from_numpy(x)).numpy()
    with heron.no_grad():
        got = N(hm(heron.tensor(x)))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_torch_train_mode_gradients(torch_models, name):
    """Train mode (batch statistics; dropout p=0 so both are deterministic): same outputs, same
    parameter gradients, same updated running statistics. In float64: batch-statistics BN over 1x1
    maps of 4 samples amplifies float32 rounding past 1e-4, float64 shows the math is the same."""
    torch, table = torch_models
    tcls, hfn = table[name]
    heron.manual_seed(15)
    hm = hfn(num_classes=5)
    hm.to(heron.float64)
    tm = tcls(5).double()
    tm.load_state_dict(to_torch_sd(torch, hm))
    if name == "mobilenet_v2":
        hm.classifier[0].p = 0.0
        tm.classifier[0].p = 0.0
    hm.train()
    tm.train()
    x = rng.standard_normal((4, 3, 32, 32))
    r = rng.standard_normal((4, 5))
    ty = tm(torch.from_numpy(x))
    (ty * torch.from_numpy(r)).sum().backward()
    hy = hm(heron.tensor(x))
    (hy * heron.tensor(r)).sum().backward()
    np.testing.assert_allclose(N(hy), ty.detach().numpy(), rtol=1e-9, atol=1e-9)
    tparams = dict(tm.named_parameters())
    for k, p in hm.named_parameters():
        tg = tparams[k].grad.numpy()
        scale = max(1e-3, float(np.abs(tg).max()))
        np.testing.assert_allclose(N(p.grad), tg, rtol=1e-7, atol=1e-9 * scale, err_msg=k)
    tsd = tm.state_dict()
    for k, v in hm.state_dict().items():
        if "running" in k or "num_batches" in k:
            np.testing.assert_allclose(N(v), tsd[k].numpy(), rtol=1e-9, atol=1e-12, err_msg=k)
