from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dispatcher.fake_tree import Tree


@pytest.fixture
def tree() -> Iterator[Tree]:
    tree = Tree()
    yield tree
    for sock in tree.sockets:
        sock.close()
