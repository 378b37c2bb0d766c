"""The CRUD walk through a client generated from the served OpenAPI document.

Usage: client_walk.py FOLDER BASE_URL TOKEN — FOLDER holds the generated package `blog_api_client`
(`openapi-python-client generate --url BASE_URL/openapi.json --output-path FOLDER/blog_api_client
--meta none`). Exits non-zero at the first answer that is not what the document promises.
"""
import sys

sys.path.insert(0, sys.argv[1])

from blog_api_client import AuthenticatedClient  # noqa: E402
from blog_api_client.api.api import create_post, delete_post, get_post, list_posts, replace_post  # noqa: E402
from blog_api_client.models import ErrorBody, Post, PostInput, PostPage  # noqa: E402

base, token = sys.argv[2], sys.argv[3]
client = AuthenticatedClient(base_url=base, token=token, raise_on_unexpected_status=True)

created = create_post.sync(client=client, body=PostInput(title="Generated", author="Client", body="Hello"))
assert isinstance(created, Post), created
fetched = get_post.sync(client=client, id=created.id)
assert isinstance(fetched, Post) and fetched.title == "Generated", fetched
page = list_posts.sync(client=client, limit=10)
assert isinstance(page, PostPage) and any(p.id == created.id for p in page.items), page
etag = get_post.sync_detailed(client=client, id=created.id).headers["etag"]
again = PostInput(title="Again", author="Client", body="Hi")
replaced = replace_post.sync(client=client, id=created.id, body=again, if_match=etag)
assert isinstance(replaced, Post) and replaced.title == "Again", replaced
stale = replace_post.sync(client=client, id=created.id, body=again, if_match=etag)
assert isinstance(stale, ErrorBody) and stale.error == "precondition_failed", stale
assert delete_post.sync_detailed(client=client, id=created.id).status_code == 204
missing = get_post.sync(client=client, id=created.id)
assert isinstance(missing, ErrorBody) and missing.error == "not_found", missing
unauthorized = AuthenticatedClient(base_url=base, token="wrong", raise_on_unexpected_status=True)
refused = create_post.sync(client=unauthorized, body=PostInput(title="No", author="Client", body="No"))
assert isinstance(refused, ErrorBody) and refused.error == "unauthorized", refused
print("the generated client created, read, listed, replaced (and was refused a stale version) and deleted a post")
