"""mlirc's fuzzing harness (`make fuzz`): mutated IR, ONNX files, command-line
inputs, artifacts, cache entries, call arguments and compile options, each
run in a worker process so crashes and hangs are counted, not fatal."""
