"""Ray internals replaced for a block come back exactly as they were, even after an error."""

import types

import pytest

from hypersweep.replaced import replaced


class Owner:
    @staticmethod
    def helper() -> str:
        return "Ray's"


def test_a_replaced_staticmethod_comes_back_a_staticmethod_after_an_error():
    original = vars(Owner)["helper"]
    with pytest.raises(RuntimeError), replaced(Owner, "helper", staticmethod(lambda: "ours")):
        assert Owner().helper() == "ours"
        raise RuntimeError("the block failed")
    assert vars(Owner)["helper"] is original
    assert Owner().helper() == "Ray's"


def test_a_module_global_is_replaced_inside_the_block_only():
    module = types.ModuleType("ray_part")
    module.upload = print
    with replaced(module, "upload", len):
        assert module.upload is len
    assert module.upload is print


def test_an_internal_ray_no_longer_has_is_an_error_not_a_silent_skip():
    with pytest.raises(AttributeError, match=r"^ray_part.gone is not there: install versions of Ray"):
        with replaced(types.ModuleType("ray_part"), "gone", len):
            pass
