#!/usr/bin/env bash
# docs.sh — builds the book (docs/) into target/book: the diagrams drawn from their dot sources
# (docs/diagrams/*.dot → docs/src/diagrams/*.svg, not checked in), mdBook's build, then every
# internal link and anchor of the built HTML checked (scripts/check-links.py). The reference pages
# in docs/src/reference/ are generated from the code (`cargo run -p blog-operator --bin docgen`) and
# checked in; a test fails when one is stale. Tools come from `scripts/tools.sh install`.
set -euo pipefail
cd "$(dirname "$0")/.."
dot=$(scripts/tools.sh dot-path)
mdbook=$(scripts/tools.sh mdbook-path)
mkdir -p docs/src/diagrams
for source in docs/diagrams/*.dot; do
  "$dot" -Tsvg "$source" -o "docs/src/diagrams/$(basename "${source%.dot}").svg"
done
rm -rf target/book
"$mdbook" build docs --dest-dir "$PWD/target/book"
python3 scripts/check-links.py target/book
