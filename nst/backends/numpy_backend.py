"""The NumPy reference backend: nst/ops.py and nst/losses.py as they are."""
import numpy as np

from .. import losses, ops
from .backend import Backend

BACKEND = Backend(
    name="numpy",
    xp=np,
    prepare_weights=lambda w, b: (np.ascontiguousarray(w), np.ascontiguousarray(b)),
    conv3x3_relu=ops.conv3x3_relu,
    conv3x3_relu_backward_input=ops.conv3x3_relu_backward_input,
    maxpool2x2=ops.maxpool2x2,
    maxpool2x2_backward=ops.maxpool2x2_backward,
    avgpool2x2=ops.avgpool2x2,
    avgpool2x2_backward=ops.avgpool2x2_backward,
    gram=losses.gram,
    content_loss_and_grad=losses.content_loss_and_grad,
    style_loss_and_grad=losses.style_loss_and_grad,
    tv_loss_and_grad=losses.tv_loss_and_grad,
    temporal_loss_and_grad=losses.temporal_loss_and_grad,
    adam_step=ops.adam_step,
)
