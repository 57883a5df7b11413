"""Rewrites of the exported FX graph before the FX importer sees it, for
what the importer or torch-mlir's lowering gets wrong."""

from __future__ import annotations

from ..errors import FrontendError


def _torch():
    import torch
    return torch


def expose_non_persistent_buffers(program) -> None:
    """torch.export keeps a buffer registered with persistent=False (e.g.
    Hugging Face's position_ids) among the program's constants, where the FX
    importer's frozen import does not look ("Could not find state mapping
    for buffer"); it is given to the importer in the state dict too."""
    for spec in program.graph_signature.input_specs:
        if spec.kind.name == "BUFFER" and spec.persistent is False and \
                spec.target not in program.state_dict and spec.target in program.constants:
            program.state_dict[spec.target] = program.constants[spec.target]


def views_as_reshapes(program) -> None:
    """Before decomposition, each `view` of the traced graph becomes a
    `reshape`: a view where the traced strides allow one, a copy where a
    decomposition gives its input other strides. Hugging Face's GPT-2 views
    the attention output, which the decomposed attention returns transposed;
    with a symbolic batch the view then failed ("Cannot view a tensor with
    shape [s, 128, 768] and strides (768, 768*s, 1)"). Where the traced view
    was valid, the reshape is the same view."""
    aten = _torch().ops.aten
    graph = program.graph_module.graph
    views = [node for node in graph.nodes
             if node.op == "call_function" and node.target is aten.view.default]
    for node in views:
        node.target = aten.reshape.default
    if views:
        program.graph_module.recompile()


def copy_weights_listed_with_values(program) -> None:
    """A weight or buffer inside a list argument (swin_t's relative position
    index in `aten.index(table, [None, index])`) goes through an aten.clone
    node: the frozen import puts the tensor itself in the list, and the FX
    importer refuses a list that mixes tensors and graph values
    ("Heterogeneous lists are not supported")."""
    torch = _torch()
    lifted = {spec.arg.name for spec in program.graph_signature.input_specs
              if spec.kind.name in ("PARAMETER", "BUFFER", "CONSTANT_TENSOR")}
    graph = program.graph_module.graph
    for node in list(graph.nodes):
        if node.op != "call_function":
            continue
        arguments = []
        for argument in node.args:
            if isinstance(argument, (list, tuple)) and any(
                    isinstance(item, torch.fx.Node) and item.name in lifted for item in argument):
                items = []
                for item in argument:
                    if isinstance(item, torch.fx.Node) and item.name in lifted:
                        with graph.inserting_before(node):
                            copy = graph.call_function(torch.ops.aten.clone.default, (item,))
                        copy.meta["val"] = item.meta.get("val")
                        item = copy
                    items.append(item)
                argument = type(argument)(items)
            arguments.append(argument)
        node.args = tuple(arguments)
    program.graph_module.recompile()


def rewrite_dynamic_views(program) -> None:
    """Views of tensors with dynamic sizes become, run by run of dimensions
    with equal products, a collapse of the run and an unflatten into the
    new sizes, in the exported graph.
    torch-mlir lowers `aten.view` of `[?, ?, 32]` to `[?*?, 32]` by casting
    the input to `?x1x32` (wrong results, NaN). The nodes are added after
    decomposition, which would turn them into views
    again. A dynamic view that does neither is refused: it would be wrong."""
    torch = _torch()
    aten = torch.ops.aten
    graph = program.graph_module.graph
    changed = False
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target not in (
                aten.view.default, aten._unsafe_view.default, aten.reshape.default) \
                and not _as_strided_is_view(node, aten):
            continue
        source_value, result_value = node.args[0].meta.get("val"), node.meta.get("val")
        if source_value is None or result_value is None or \
                all(isinstance(d, int) for d in source_value.shape):
            continue
        groups = _view_groups(list(source_value.shape), list(result_value.shape))
        if groups is None:
            where = (node.meta.get("stack_trace") or "").strip().splitlines()
            raise FrontendError(f"a reshape of dynamic sizes {list(source_value.shape)} -> "
                                f"{list(result_value.shape)} with no matching runs of "
                                f"sizes ({where[-2].strip() if len(where) > 1 else node.name}"
                                "); it cannot be compiled correctly yet")
        if all(len(a) == 1 for a, _ in groups) and all(len(b) == 1 for _, b in groups):
            if node.target is aten.as_strided.default:  # the same shape and strides
                node.replace_all_uses_with(node.args[0])
                graph.erase_node(node)
                changed = True
            continue
        current, axis = node.args[0], 0
        sizes = list(node.args[1])
        with graph.inserting_before(node), source_value.fake_mode:
            value = source_value
            for source, target in groups:
                # (op, its arguments in the graph, the same for the fake value)
                steps = []
                if len(source) > 1:
                    span = (axis, axis + len(source) - 1)
                    steps.append((torch.ops.prims.collapse.default, span, span))
                if len(target) > 1:
                    steps.append((torch.ops.aten.unflatten.int,
                                  (axis, _unflatten_sizes(sizes[axis:axis + len(target)],
                                                          target)),
                                  (axis, list(result_value.shape[axis:axis + len(target)]))))
                for target_op, arguments, fake_arguments in steps:
                    value = target_op(value, *fake_arguments)
                    current = _replacement_call(graph, target_op, (current, *arguments),
                                                value, node)
                axis += len(target)
        node.replace_all_uses_with(current)
        graph.erase_node(node)
        changed = True
    if changed:
        graph.eliminate_dead_code()  # the size products the views took
        graph.lint()
        program.graph_module.recompile()


def _as_strided_is_view(node, aten) -> bool:
    """An `as_strided` that reads a contiguous tensor as contiguous in another
    shape: a view. Decompositions write some views this way (the
    channels-last strides of adaptive_avg_pool2d's [N, C, 1, 1] result in
    ConvNeXt); the FX importer refuses it when a size is symbolic."""
    if node.op != "call_function" or node.target is not aten.as_strided.default:
        return False
    offset = node.args[3] if len(node.args) > 3 else node.kwargs.get("storage_offset")
    source_value, result_value = node.args[0].meta.get("val"), node.meta.get("val")
    if offset not in (None, 0) or source_value is None or result_value is None:
        return False
    return (_has_contiguous_strides(list(source_value.shape), list(source_value.stride()))
            and _has_contiguous_strides(list(result_value.shape), list(node.args[2]))
            and _same_size(_product(list(source_value.shape)),
                           _product(list(result_value.shape))))


def _has_contiguous_strides(shape: list, strides: list) -> bool:
    """Row-major strides, where the stride of a size-1 dimension is free."""
    expected = 1
    for size, stride in reversed(list(zip(shape, strides))):
        if not (isinstance(size, int) and size == 1):
            if isinstance(stride, _torch().fx.Node) or not _same_size(stride, expected):
                return False
        expected = expected * size
    return True


def fold_broadcast_weight_matmuls(program) -> None:
    """`x @ w` with x of shape [B, M, K] and a 2-D w, which PyTorch traces
    as a bmm of x and w expanded to [B, K, N] when it cannot tell that x's
    layout folds (a symbolic batch, a transposed x), becomes one matmul of
    [B*M, K] by w: the GEMM with packed, pre-transposed weights instead of B
    batched products each reading the weight again, and no copies of x and
    w for the broadcast."""
    torch = _torch()
    aten = torch.ops.aten
    graph = program.graph_module.graph
    changed = False
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target is not aten.bmm.default:
            continue
        weight = _broadcast_source(node.args[1], aten)
        left_value, weight_value = node.args[0].meta.get("val"), weight.meta.get("val")
        if weight_value is None or weight_value.dim() != 2 or left_value is None:
            continue
        # the [B, M] split of the product's rows, one of them static (unflatten
        # takes one -1): B is symbolic after a batch-first attention's transpose
        batch, rows = left_value.shape[0], left_value.shape[1]
        if isinstance(rows, int):
            split = [-1, rows]
        elif isinstance(batch, int):
            split = [batch, -1]
        else:
            continue
        left = _broadcast_source(node.args[0], aten)
        if left.meta.get("val") is None or left.meta["val"].dim() != 3:
            left = node.args[0]
        bias_add = _bias_add_after(node, aten)
        replaced = bias_add or node
        # (op, its arguments after the running value)
        steps = [(torch.ops.prims.collapse.default, (0, 1)), (aten.mm.default, (weight,)),
                 *([(aten.add.Tensor, (bias_add.args[1],))] if bias_add else []),
                 (aten.unflatten.int, (0, split))]
        with graph.inserting_before(replaced), left_value.fake_mode:
            value, current = left.meta["val"], left
            for target_op, arguments in steps:
                graph_arguments = (current, *arguments)
                value = target_op(*(a.meta["val"] if isinstance(a, torch.fx.Node) else a
                                    for a in graph_arguments))
                current = _replacement_call(graph, target_op, graph_arguments, value, replaced)
        replaced.replace_all_uses_with(current)
        graph.erase_node(replaced)
        changed = True
    if changed:
        graph.eliminate_dead_code()  # the bmm (behind a folded add), its broadcasts
        graph.lint()
        program.graph_module.recompile()


def _bias_add_after(matmul, aten):
    """The `+ bias` (1-D) that is the only use of `matmul` (through views that
    keep its shape), or None: added before the unflatten, to the [B*M, N]
    product, it folds into the GEMM call (blas-offload)."""
    current = matmul
    while len(current.users) == 1:
        user = next(iter(current.users))
        value, user_value = current.meta.get("val"), user.meta.get("val")
        if user.target in (aten.view.default, aten._unsafe_view.default) and \
                value is not None and user_value is not None and \
                value.dim() == user_value.dim() and \
                all(_same_size(a, b) for a, b in zip(value.shape, user_value.shape)):
            current = user
            continue
        if user.target is aten.add.Tensor and not user.kwargs and len(user.args) == 2 and \
                user.args[0] is current and isinstance(user.args[1], _torch().fx.Node):
            bias = user.args[1].meta.get("val")
            if bias is not None and bias.dim() == 1 and user_value is not None and \
                    bias.dtype == user_value.dtype and _same_size(bias.shape[0], value.shape[-1]):
                return user
        return None
    return None


def _broadcast_source(node, aten):
    """The tensor a chain of views and expands that keep or only prepend
    dimensions starts from (a weight [K, N] behind its [B, K, N] broadcast)."""
    while getattr(node, "op", None) == "call_function" and node.target in (
            aten.view.default, aten._unsafe_view.default, aten.reshape.default,
            aten.expand.default):
        source, result = node.args[0].meta.get("val"), node.meta.get("val")
        if source is None or result is None or source.dim() > result.dim() or not all(
                _same_size(a, b) for a, b in zip(source.shape, result.shape[-source.dim():])):
            break
        node = node.args[0]
    return node


def _replacement_call(graph, target, args: tuple, value, replaced):
    """A new call node standing (with others) for `replaced`: it keeps the
    replaced node's source metadata, with its own fake value."""
    node = graph.call_function(target, args)
    node.meta.update({key: replaced.meta[key] for key in _KEPT_META if key in replaced.meta},
                     val=value)
    return node


# what a replaced node's replacements keep of its metadata (not its shape)


_KEPT_META = ("stack_trace", "nn_module_stack", "source_fn_stack", "from_node", "seq_nr")


def _unflatten_sizes(arguments: list, target: list) -> list:
    """The sizes to unflatten into: with one dynamic size among them, -1 for
    it (torch-mlir cannot lower a size computed as an integer product, such
    as 4*s for attention heads); with more, the graph's own size values."""
    dynamic = [i for i, size in enumerate(target) if not isinstance(size, int)]
    if len(dynamic) == 1:
        return [-1 if i == dynamic[0] else size for i, size in enumerate(target)]
    return list(arguments)


def _view_groups(shape: list, size: list):
    """[(input dims, output dims)] pairing runs of equal products, or None
    when a -1 or an unequal product makes the pairing unclear."""
    if any(isinstance(d, int) and d < 0 for d in size):
        return None
    groups, i, j = [], 0, 0
    while i < len(shape) and j < len(size):
        source, target = [shape[i]], [size[j]]
        i, j = i + 1, j + 1
        while not _same_size(_product(source), _product(target)):
            if _known_size(_product(source)) < _known_size(_product(target)) and i < len(shape):
                source.append(shape[i])
                i += 1
            elif j < len(size):
                target.append(size[j])
                j += 1
            else:
                return None
        groups.append((source, target))
    # size-1 dimensions left at the end join the last run
    rest_source, rest_target = shape[i:], size[j:]
    if groups and all(isinstance(d, int) and d == 1 for d in rest_source + rest_target):
        groups[-1] = (groups[-1][0] + rest_source, groups[-1][1] + rest_target)
    elif rest_source or rest_target:
        return None
    return groups


def _product(sizes: list):
    total = 1
    for size in sizes:
        total = total * size
    return total


def _expression(size):
    import sympy
    return size.node.expr if hasattr(size, "node") else sympy.Integer(size)


def _same_size(a, b) -> bool:
    """Symbolically equal sizes, without asking torch to guard on them."""
    import sympy
    return sympy.simplify(_expression(a) - _expression(b)) == 0


def _known_size(size) -> float:
    """A size's value with each symbol at its example hint (for ordering)."""
    expression = _expression(size)
    if expression.is_number:
        return float(expression)
    hint = size.node.hint if hasattr(size, "node") else None
    return float(hint) if hint is not None else float("inf")


def scalar_ops_through_tensors(program) -> None:
    """Python arithmetic on a value read from a tensor (`int(t.min())` is
    `math.trunc` of `t.min().item()`, `bool(t > 0)` becomes `sym_ite`, a
    read value put back into a tensor is `scalar_tensor`) is moved onto the
    tensor before it is read: the FX importer has no op for these builtins.
    The range assertions torch.export adds on `sym_ite`'s 0/1 result go with
    it (they hold by construction)."""
    import math
    torch = _torch()
    aten = torch.ops.aten
    graph = program.graph_module.graph
    read = aten._local_scalar_dense.default
    changed = False
    for node in list(graph.nodes):
        if node.op != "call_function":
            continue
        source = node.args[0] if node.args else None
        if not (isinstance(source, torch.fx.Node) and source.target == read):
            continue
        if node.target == aten.scalar_tensor.default:  # the tensor itself, in its dtype
            dtype = node.kwargs.get("dtype") or node.meta["val"].dtype
            steps, read_back = [(aten._to_copy.default, (), {"dtype": dtype})], False
        elif node.target is math.trunc:
            steps = [(aten.trunc.default, (), {}),
                     (aten._to_copy.default, (), {"dtype": torch.int64})]
            read_back = True
        elif node.target is torch.sym_ite and all(
                isinstance(value, (int, float, bool)) for value in node.args[1:]):
            steps, read_back = [(aten.where.Scalar, node.args[1:], {})], True
        else:
            continue
        with graph.inserting_before(node):
            value = source.args[0]
            for target, extra, kwargs in steps:
                value = _traced_call(graph, target, (value, *extra), kwargs,
                                     target(value.meta["val"], *extra, **kwargs))
            if read_back:
                value = graph.call_function(read, (value,))
                value.meta["val"] = node.meta.get("val")
        for user in list(node.users) if read_back else []:
            if user.op == "call_function" and all(
                    u.target == aten._assert_scalar.default for u in user.users):
                for check in list(user.users):
                    graph.erase_node(check)
        node.replace_all_uses_with(value)
        changed = True
    changed |= _bool_reads_as_tensors(graph, read)
    if changed:
        graph.eliminate_dead_code()
        program.graph_module.recompile()


def _traced_call(graph, target, args: tuple, kwargs: dict, fake):
    """A new call node with the metadata the FX importer reads off its result."""
    from torch.fx.passes.shape_prop import _extract_tensor_metadata
    node = graph.call_function(target, args, kwargs)
    node.meta["val"] = fake
    node.meta["tensor_meta"] = _extract_tensor_metadata(fake)
    return node


def _bool_reads_as_tensors(graph, read) -> bool:
    """`x * bool(t)`: the FX importer types a bool read from a tensor as an
    int, which does not verify; an elementwise `.Tensor` op takes the 0-d
    tensor itself, with the same type promotion as the Python bool."""
    torch = _torch()
    changed = False
    for node in list(graph.nodes):
        if node.target != read or node.args[0].meta["val"].dtype != torch.bool:
            continue
        for user in list(node.users):
            overload = getattr(user.target, "_overloadname", "")
            if user.op == "call_function" and overload == "Tensor" and \
                    user.args and user.args[0] is not node:
                user.replace_input_with(node, node.args[0])
                changed = True
    return changed
