"""mlirc's kernel library: C kernels for the ops that generated code does not
yet beat (GEMMs with constant weights, convolutions, pooling), the BLAS
behind them, their build, the host's CPU level and the kernel choice.

- include/mlirc_kernels.h: every entry point and its contract;
- src/: the C sources, one file a concern (kernels.h, the internal header,
  says which), built as one translation unit (mlirc_kernels.c);
- build.py: the build (prebuilt at install time, or once per cache, locked);
- host.py: the CPU level the kernels are built for and chosen by;
- choice.py: which kernel each offloaded op runs, written into the IR;
- library.py: loading the library and its BLAS.

`python -m mlirc.kernels build` builds the library for this host into the
package's prebuilt/ folder (`make` and `pip install .` do it).
"""
