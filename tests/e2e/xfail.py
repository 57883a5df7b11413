"""Expected e2e failures per backend, each with its reason. A case listed here
that starts passing makes the suite fail (strict), so the table stays true."""

XFAIL: dict[str, dict[str, str]] = {
    "jit": {
        "bitwise_xor_scalar": "torch-mlir 20261001 has no aten.bitwise_xor.Scalar op "
                              "(imported as an unknown torch.operator)",
    },
}


def expected_failure(backend: str, name: str) -> str | None:
    return XFAIL.get(backend, {}).get(name)
