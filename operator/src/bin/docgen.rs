//! Writes the book's generated reference pages (`docs/src/reference/`): `cargo run -p blog-operator --bin docgen`.

fn main() -> anyhow::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(blog_operator::reference::DIR);
    std::fs::create_dir_all(&dir)?;
    for (file, page) in blog_operator::reference::pages()? {
        std::fs::write(dir.join(file), page)?;
        println!("wrote {}/{file}", blog_operator::reference::DIR);
    }
    Ok(())
}
