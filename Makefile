# The few commands a newcomer needs.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/rollama/target

.PHONY: test lint docs build
test:
	./scripts/test.sh
lint:
	cargo fmt --check
	cargo clippy --release --all-targets -- -D warnings
docs:
	ROLLAMA_BLESS=1 cargo test --release --test docs
build:
	. scripts/cargo-env.sh && cargo build --release
