"""Routes: presenter (being built)."""

from fastapi import APIRouter

router = APIRouter()
