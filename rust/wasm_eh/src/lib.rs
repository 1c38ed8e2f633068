//! Legacy wasm exception handling → exnref translation (work in progress; see issue 9).
