"""Resolve images to facts: cache tiers, single-flight, deadlines, background completion."""

from distroguard.resolver.cache import CacheSettings, FactsCache
from distroguard.resolver.resolver import Resolver, ResolverSettings

__all__ = ["CacheSettings", "FactsCache", "Resolver", "ResolverSettings"]
