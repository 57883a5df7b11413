"""Imports torchvision beside the pinned CPU build of torch.

torchvision's wheel on PyPI is built for CUDA: its C++ operators
(torchvision::nms, roi_align, deform_conv2d, ...) fail to load against the
CPU torch, and its import then stops at registering their meta kernels
("operator torchvision::nms does not exist"). The classification models
the benchmarks build never call them, so here they are defined first:
`nms` with a plain PyTorch implementation, the others raising a clear
error if a model ever reaches them. Never change the pinned torch instead.
"""

from __future__ import annotations

import torch

SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "roi_align": "roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt "
                 "pooled_height, SymInt pooled_width, int sampling_ratio, bool aligned) -> Tensor",
    "qroi_align": "qroi_align(Tensor input, Tensor rois, float spatial_scale, SymInt "
                  "pooled_height, SymInt pooled_width, int sampling_ratio, bool aligned) -> Tensor",
    "_roi_align_backward": "_roi_align_backward(Tensor grad, Tensor rois, float spatial_scale, "
                           "SymInt pooled_height, SymInt pooled_width, SymInt batch_size, SymInt "
                           "channels, SymInt height, SymInt width, int sampling_ratio, bool "
                           "aligned) -> Tensor",
    "ps_roi_align": "ps_roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt "
                    "pooled_height, SymInt pooled_width, int sampling_ratio) -> (Tensor, Tensor)",
    "_ps_roi_align_backward": "_ps_roi_align_backward(Tensor grad, Tensor rois, Tensor "
                              "channel_mapping, float spatial_scale, SymInt pooled_height, SymInt "
                              "pooled_width, int sampling_ratio, SymInt batch_size, SymInt "
                              "channels, SymInt height, SymInt width) -> Tensor",
    "roi_pool": "roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
                "SymInt pooled_width) -> (Tensor, Tensor)",
    "_roi_pool_backward": "_roi_pool_backward(Tensor grad, Tensor rois, Tensor argmax, float "
                          "spatial_scale, SymInt pooled_height, SymInt pooled_width, SymInt "
                          "batch_size, SymInt channels, SymInt height, SymInt width) -> Tensor",
    "ps_roi_pool": "ps_roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt "
                   "pooled_height, SymInt pooled_width) -> (Tensor, Tensor)",
    "_ps_roi_pool_backward": "_ps_roi_pool_backward(Tensor grad, Tensor rois, Tensor "
                             "channel_mapping, float spatial_scale, SymInt pooled_height, SymInt "
                             "pooled_width, SymInt batch_size, SymInt channels, SymInt height, "
                             "SymInt width) -> Tensor",
    "deform_conv2d": "deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor mask, "
                     "Tensor bias, SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, "
                     "SymInt dilation_h, SymInt dilation_w, SymInt groups, SymInt offset_groups, "
                     "bool use_mask) -> Tensor",
    "_deform_conv2d_backward": "_deform_conv2d_backward(Tensor grad, Tensor input, Tensor weight, "
                               "Tensor offset, Tensor mask, Tensor bias, SymInt stride_h, SymInt "
                               "stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, SymInt "
                               "dilation_w, SymInt groups, SymInt offset_groups, bool use_mask) "
                               "-> (Tensor, Tensor, Tensor, Tensor, Tensor)",
}

_library = None


def nms(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression: indices of the kept boxes (x1, y1,
    x2, y2), highest score first."""
    order = scores.argsort(descending=True)
    areas = (dets[:, 2] - dets[:, 0]) * (dets[:, 3] - dets[:, 1])
    keep = []
    while order.numel():
        best = order[0]
        keep.append(best)
        rest = order[1:]
        top_left = torch.maximum(dets[best, :2], dets[rest, :2])
        bottom_right = torch.minimum(dets[best, 2:], dets[rest, 2:])
        overlap = (bottom_right - top_left).clamp(min=0).prod(dim=1)
        iou = overlap / (areas[best] + areas[rest] - overlap)
        order = rest[iou <= iou_threshold]
    return torch.stack(keep) if keep else torch.empty(0, dtype=torch.long)


def _missing(name: str):
    def run(*args, **kwargs):
        raise NotImplementedError(f"torchvision::{name} has no CPU implementation here "
                                  "(torchvision's wheel is a CUDA build)")
    return run


def import_torchvision():
    """torchvision, its missing operators defined first (once)."""
    global _library
    if _library is None and not hasattr(torch.ops.torchvision, "nms"):
        _library = torch.library.Library("torchvision", "DEF")
        for name, schema in SCHEMAS.items():
            _library.define(schema)
            _library.impl(name, nms if name == "nms" else _missing(name),
                          "CompositeExplicitAutograd")
    import torchvision
    import torchvision.extension
    torchvision.extension._has_ops = lambda: True  # they are defined now, as above
    return torchvision
