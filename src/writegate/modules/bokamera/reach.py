"""Which addresses the Vaka connector may connect to (`WRITEGATE_BOKAMERA_VAKA_NETWORKS`)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

#: comma-separated networks (CIDR, or single addresses) the connector may connect to
NETWORKS_ENV = "WRITEGATE_BOKAMERA_VAKA_NETWORKS"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class NotAllowed(Exception):
    """Every address of a Vaka host is outside the networks the connector may reach."""


@dataclass(frozen=True)
class Reach:
    """The addresses a company's `ApiEndpoint` may lead the server to.

    `networks` None: any address but those no Vaka system has (link-local, such as a cloud's
    metadata service at 169.254.169.254, unspecified, multicast, reserved); else only
    addresses in those networks.
    """

    networks: tuple[Network, ...] | None = None

    @classmethod
    def parse(cls, text: str) -> Reach:
        """The policy of a `WRITEGATE_BOKAMERA_VAKA_NETWORKS` value; ValueError if unusable."""
        if not text.strip():
            return cls()
        networks = []
        for part in (p.strip() for p in text.split(",")):
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(
                    f"{part!r} is not a network (CIDR such as 10.20.0.0/16, or one address)"
                ) from None
        return cls(tuple(networks))

    def permits(self, address: Address) -> bool:
        """Whether the connector may connect to address."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if self.networks is not None:
            return any(address in network for network in self.networks)
        return not (
            address.is_link_local
            or address.is_unspecified
            or address.is_multicast
            or address.is_reserved
        )

    def addresses_of(self, host: str, port: int) -> list[str]:
        """The addresses of host that `permits` allows, in the resolver's order.

        Raises NotAllowed if it has none, OSError if host does not resolve.
        """
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        allowed = [a for a in addresses if self.permits(ipaddress.ip_address(a.split("%", 1)[0]))]
        if allowed:
            return allowed
        if self.networks is None:
            why = "no Vaka system's (link-local, unspecified, multicast or reserved)"
        else:
            why = f"outside the networks of {NETWORKS_ENV}"
        raise NotAllowed(f"{host} resolves to {', '.join(addresses)}: {why}; not connected")
