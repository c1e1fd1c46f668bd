"""Entry point Pulumi runs for `pulumi preview --policy-pack policy`."""

import sys
from pathlib import Path

# Pulumi runs this folder as a script; make `policy.rules` importable the same way the tests import it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from policy.rules import POLICIES

PolicyPack(name="flixtube", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
