"""Routes: stream (being built)."""

from fastapi import APIRouter

router = APIRouter()
