"""The attention head option of EfficientNet-B0: chosen by the training config, trains for both class kinds."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from labeling_assets.assets.train import TrainedModelConfig
from labeling_assets.core.training.attention import AttentionHead, EfficientNetAttention, feature_grid
from labeling_assets.core.training.checkpoint import load_checkpoint, save_checkpoint
from labeling_assets.core.training.config import TrainConfig
from labeling_assets.core.training.loop import fit
from labeling_assets.core.training.models import build_backbone, build_model
from labeling_assets.core.training.predict import predict_proba

torch.set_num_threads(1)  # the CI machine is small and shared

SIZE = 64  # a 2x2 final feature map: four tokens to attend over


def _config(**kw: object) -> TrainConfig:
    base = dict(num_classes=3, backbone="efficientnet_b0", head="attention", image_size=SIZE, channels=1,
                epochs=1, batch_size=16, patience=0, device="cpu")  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_the_training_config_selects_the_attention_head_and_only_on_efficientnet_b0() -> None:
    assert TrainConfig(num_classes=2).head == "linear"  # the default keeps the pooled linear classifier
    assert isinstance(build_model(_config()).backbone, EfficientNetAttention)
    assert isinstance(build_model(_config(head="linear")).backbone, torchvision.models.EfficientNet)
    # The run config carries it into the core's config.
    meta = {"classes": ["a", "b"], "image_size": SIZE, "channels": 1}
    run = TrainedModelConfig(backbone="efficientnet_b0", head="attention")
    assert run.train_config(meta, n_train=1000).head == "attention"
    with pytest.raises(ValueError, match="head 'attention' needs backbone efficientnet_b0, not 'resnet18'"):
        build_model(_config(backbone="resnet18"))
    with pytest.raises(ValueError, match="not 'small_cnn'"):  # auto resolves to small_cnn at 64 px
        build_backbone("small_cnn", 3, head="attention")


def test_forward_and_backward_shapes_with_tokens_per_position_and_a_positional_embedding() -> None:
    assert feature_grid(224) == 7 and feature_grid(SIZE) == 2 and feature_grid(300) == 10
    head = AttentionHead(in_channels=1280, num_classes=5, grid=2, dim=32, heads=4)
    features = torch.randn(3, 1280, 2, 2, requires_grad=True)
    assert head.tokens(features).shape == (3, 4, 32)  # one token per spatial position
    logits = head(features)
    assert logits.shape == (3, 5)
    logits.sum().backward()
    assert features.grad is not None and head.position.grad is not None
    assert head.position.grad.abs().sum() > 0  # the positional embedding is learned
    # Another input size interpolates the embedding instead of failing.
    assert head(torch.randn(2, 1280, 3, 3)).shape == (2, 5)
    model = build_model(_config())
    out = model(torch.randint(0, 256, (2, 1, SIZE, SIZE), dtype=torch.uint8))
    assert out.shape == (2, 3)


def test_local_imagenet_weights_load_into_the_features_and_the_head_starts_fresh(tmp_path: Path) -> None:
    source = torchvision.models.efficientnet_b0(weights=None)  # the layout of a local ImageNet state_dict
    path = tmp_path / "efficientnet_b0.pt"
    torch.save(source.state_dict(), path)
    model = build_backbone("efficientnet_b0", 3, in_channels=3, weights_path=str(path), head="attention")
    assert isinstance(model, EfficientNetAttention)
    torch.testing.assert_close(model.features[1][0].block[0][0].weight, source.features[1][0].block[0][0].weight)


@pytest.mark.parametrize("task_kind", ["single_label", "multi_label"])
def test_a_tiny_training_run_on_the_cpu_and_its_checkpoint_rebuild_the_attention_model(
    task_kind: str, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (16, 1, SIZE, SIZE)).astype(np.uint8)
    y = (rng.random((16, 3)) < 0.5).astype(np.uint8) if task_kind == "multi_label" else rng.integers(0, 3, 16)
    config = _config(task_kind=task_kind)
    result = fit(x, y, x[:8], y[:8], config)
    assert len(result.history) == 1 and np.isfinite(result.history[0].train_loss)
    probs = predict_proba(result.model, x[:4], task_kind=task_kind)
    assert probs.shape == (4, 3)
    path = tmp_path / "model.pt"
    save_checkpoint(path, result, config, ["a", "b", "c"])
    model, loaded, _ = load_checkpoint(path)
    assert loaded.head == "attention" and isinstance(model.backbone, EfficientNetAttention)
    np.testing.assert_allclose(predict_proba(model, x[:4], task_kind=task_kind), probs, atol=1e-5)
