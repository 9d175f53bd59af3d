// The sandbox ("pause") program of the test node: built by `scripts/testenv build --node` into a
// FROM-scratch image that containerd runs as every pod's sandbox. No dependencies.
module distroguard.dev/tools/pause

go 1.26.0
