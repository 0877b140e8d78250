"""`python -m switchboard_operator`: the kopf operator, settings from SWITCHBOARD_OPERATOR_* variables.

One replica (standalone: no kopf peering); the Deployment's Recreate strategy keeps it to one.
"""

import asyncio
import logging

import kopf

from switchboard_operator import settings as operator_settings
from switchboard_operator.handlers import Operator


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = operator_settings.load()
    operator = Operator(settings)
    namespaces = [n.strip() for n in settings.namespaces.split(",") if n.strip()]
    asyncio.run(kopf.operator(registry=operator.registry(), standalone=True,
                              clusterwide=not namespaces, namespaces=namespaces))


if __name__ == "__main__":
    main()
