"""Adaptive pooling (windows of varying stride too), embedding_bag in every
mode, and updates through boolean masks."""

import torch
from torch import nn

from .registry import case, randint, randn, register

ADAPTIVE = {
    # name: (layer, input shape)
    "adaptive_max2d_uneven": (lambda: nn.AdaptiveMaxPool2d((3, 5)), (1, 2, 13, 17)),
    "adaptive_max2d_even": (lambda: nn.AdaptiveMaxPool2d((4, 4)), (2, 3, 8, 8)),
    "adaptive_max2d_global": (lambda: nn.AdaptiveMaxPool2d(1), (2, 4, 7, 9)),
    "adaptive_max2d_none_dim": (lambda: nn.AdaptiveMaxPool2d((None, 3)), (1, 2, 6, 10)),
    "adaptive_max2d_unbatched": (lambda: nn.AdaptiveMaxPool2d((4, 3)), (2, 9, 7)),
    "adaptive_max2d_upsample": (lambda: nn.AdaptiveMaxPool2d((6, 6)), (1, 1, 4, 5)),
    "adaptive_max1d_uneven": (lambda: nn.AdaptiveMaxPool1d(5), (2, 3, 13)),
    "adaptive_max3d_uneven": (lambda: nn.AdaptiveMaxPool3d((2, 3, 2)), (1, 2, 5, 7, 5)),
    "adaptive_avg2d_uneven": (lambda: nn.AdaptiveAvgPool2d((3, 5)), (1, 2, 13, 17)),
    "adaptive_avg2d_global": (lambda: nn.AdaptiveAvgPool2d(1), (2, 8, 7, 7)),
    "adaptive_avg1d_uneven": (lambda: nn.AdaptiveAvgPool1d(4), (2, 3, 10)),
    "adaptive_avg3d_uneven": (lambda: nn.AdaptiveAvgPool3d((2, 3, 2)), (1, 2, 5, 7, 5)),
}
for _name, (_layer, _shape) in ADAPTIVE.items():
    register(_name, _layer(), lambda shape=_shape: (randn(*shape),))


class MaxPoolWithIndices(nn.Module):
    def __init__(self):
        super().__init__()
        self.pool = nn.AdaptiveMaxPool2d((3, 4), return_indices=True)

    def forward(self, x):
        return self.pool(x)


@case(inputs=lambda: (randn(2, 3, 11, 10),), module=True)
def adaptive_max2d_with_indices():
    return MaxPoolWithIndices()


def _bags():  # 7 indices in 3 bags
    return (randint(0, 10, 7), torch.tensor([0, 2, 5]))


BAGS = {
    "embedding_bag_sum_offsets": (lambda: nn.EmbeddingBag(10, 4, mode="sum"), _bags),
    "embedding_bag_mean_offsets": (lambda: nn.EmbeddingBag(10, 4, mode="mean"), _bags),
    "embedding_bag_max_offsets": (lambda: nn.EmbeddingBag(10, 4, mode="max"), _bags),
    "embedding_bag_sum_2d": (lambda: nn.EmbeddingBag(10, 4, mode="sum"),
                             lambda: (randint(0, 10, 3, 4),)),
    "embedding_bag_mean_2d": (lambda: nn.EmbeddingBag(10, 4, mode="mean"),
                              lambda: (randint(0, 10, 3, 4),)),
    "embedding_bag_max_2d": (lambda: nn.EmbeddingBag(10, 4, mode="max"),
                             lambda: (randint(0, 10, 3, 4),)),
    "embedding_bag_mean_empty_bag": (lambda: nn.EmbeddingBag(10, 4, mode="mean"),
                                     lambda: (randint(0, 10, 7), torch.tensor([0, 2, 2, 5]))),
    "embedding_bag_max_empty_bag": (lambda: nn.EmbeddingBag(10, 4, mode="max"),
                                    lambda: (randint(0, 10, 7), torch.tensor([0, 0, 5]))),
    "embedding_bag_sum_padding_idx": (lambda: nn.EmbeddingBag(10, 4, mode="sum", padding_idx=3),
                                      lambda: (torch.tensor([3, 1, 3, 4, 5, 3]),
                                               torch.tensor([0, 2, 4]))),
    "embedding_bag_mean_padding_idx": (lambda: nn.EmbeddingBag(10, 4, mode="mean",
                                                               padding_idx=3),
                                       lambda: (torch.tensor([3, 1, 3, 4, 5, 3]),
                                                torch.tensor([0, 2, 4]))),
    "embedding_bag_include_last_offset": (lambda: nn.EmbeddingBag(10, 4, mode="mean",
                                                                  include_last_offset=True),
                                          lambda: (randint(0, 10, 7),
                                                   torch.tensor([0, 2, 5, 7]))),
    "embedding_bag_per_sample_weights": (lambda: nn.EmbeddingBag(10, 4, mode="sum"),
                                         lambda: (randint(0, 10, 7), torch.tensor([0, 2, 5]),
                                                  torch.rand(7))),
    "embedding_bag_int32_indices": (lambda: nn.EmbeddingBag(10, 4, mode="sum"),
                                    lambda: (randint(0, 10, 7, dtype=torch.int32),
                                             torch.tensor([0, 3], dtype=torch.int32))),
}
for _name, (_layer, _inputs) in BAGS.items():
    register(_name, _layer(), _inputs)


_TABLE = torch.randn(10, 4)


@case(inputs=_bags)
def embedding_bag_all_four_results(indices, offsets):
    return torch.embedding_bag(_TABLE, indices, offsets, False, 1)


def _matrix_and_mask():
    x = randn(4, 5)
    return x, x > 0.3


MASKS = {
    "mask_index_put_scalar": lambda x, m: torch.index_put(x, (m,), torch.tensor(-1.0)),
    "mask_index_put_accumulate": lambda x, m: torch.index_put(x, (m,), torch.tensor(2.0),
                                                              accumulate=True),
    "mask_masked_fill": lambda x, m: x.masked_fill(m, 0.0),
    "mask_where_tensor": lambda x, m: torch.where(m, x, -x),
    "mask_where_scalar": lambda x, m: torch.where(m, x, 0.0),
    "mask_row_mask_index_put": lambda x, m: torch.index_put(x, (m[:, 0],), torch.tensor(7.0)),
    "mask_masked_fill_broadcast": lambda x, m: x.masked_fill(m[0], float("-inf")).softmax(-1),
    "mask_setitem_on_clone": lambda x, m: _set_masked(x.clone(), m),
}


def _set_masked(x, m):
    x[m] = 9.0
    return x


for _name, _forward in MASKS.items():
    register(_name, _forward, _matrix_and_mask)
