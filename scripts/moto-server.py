"""moto_server, with an EC2 resource's tags found by its id instead of by a scan of the region.

moto (5.2.5, and 5.2.6) answers `TaggedEC2Resource.get_tags` with `describe_tags` filtered on
`resource-id`: a regular expression tried against every tag of the region. Describing n security
groups then costs n times all the tags, and past about 2,800 groups one DescribeSecurityGroups takes
longer than the operator's attempt (docs/src/guides/scale.md). An EC2 id holds no `*` or `?`, and
moto anchors the expression (fnmatch), so a lookup by id returns the same tags in the same order.
Everything else is moto's own: run as `python moto-server.py [moto_server's arguments]`.
"""

import sys

from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix
from moto.server import main


def get_tags(self):
    """The resource's tags, in the shape `describe_tags` gives them."""
    if not self.id:
        return []
    found = self.ec2_backend.tags.get(self.id, {})  # .get: the backend's dict is a defaultdict
    kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(self.id), "")
    return [{"resource_id": self.id, "key": k, "value": v, "resource_type": kind} for k, v in found.items()]


TaggedEC2Resource.get_tags = get_tags

if __name__ == "__main__":
    main(sys.argv[1:])
