"""RTDE wire format (protocol version 2), as the UR controller speaks it on TCP 30004.

Every message is a header ``>HB`` (total size including the header, message type) and a payload.
Recipes bind a list of variable names to a binary layout: the client sends the names, the controller
answers with a recipe id and the type of each name, and every later data package (``U``) starts with
that recipe id followed by the values packed big-endian in recipe order.

``ur_rtde`` decodes output packages by its own table of name -> type, not by the types the controller
returns, so the types below must match UR's RTDE guide exactly, or every field after a wrong one is
read at the wrong offset.
"""

from __future__ import annotations

import re
import socket
import struct
from dataclasses import dataclass

HEADER = struct.Struct(">HB")
PROTOCOL_VERSION = 2

REQUEST_PROTOCOL_VERSION = ord("V")
GET_URCONTROL_VERSION = ord("v")
TEXT_MESSAGE = ord("M")
DATA_PACKAGE = ord("U")
SETUP_OUTPUTS = ord("O")
SETUP_INPUTS = ord("I")
START = ord("S")
PAUSE = ord("P")

NOT_FOUND = "NOT_FOUND"

_TYPE_FORMATS = {
    "BOOL": "?",
    "UINT8": "B",
    "UINT32": "I",
    "UINT64": "Q",
    "INT32": "i",
    "DOUBLE": "d",
    "VECTOR3D": "3d",
    "VECTOR6D": "6d",
    "VECTOR6INT32": "6i",
    "VECTOR6UINT32": "6I",
}

_FIXED_OUTPUTS = {
    "timestamp": "DOUBLE",
    "target_q": "VECTOR6D",
    "target_qd": "VECTOR6D",
    "target_qdd": "VECTOR6D",
    "target_current": "VECTOR6D",
    "target_moment": "VECTOR6D",
    "actual_q": "VECTOR6D",
    "actual_qd": "VECTOR6D",
    "actual_qdd": "VECTOR6D",
    "actual_current": "VECTOR6D",
    "actual_moment": "VECTOR6D",
    "joint_control_output": "VECTOR6D",
    "actual_TCP_pose": "VECTOR6D",
    "actual_TCP_speed": "VECTOR6D",
    "actual_TCP_force": "VECTOR6D",
    "target_TCP_pose": "VECTOR6D",
    "target_TCP_speed": "VECTOR6D",
    "actual_digital_input_bits": "UINT64",
    "joint_temperatures": "VECTOR6D",
    "actual_execution_time": "DOUBLE",
    "robot_mode": "INT32",
    "joint_mode": "VECTOR6INT32",
    "safety_mode": "INT32",
    "safety_status": "INT32",
    "actual_tool_accelerometer": "VECTOR3D",
    "speed_scaling": "DOUBLE",
    "target_speed_fraction": "DOUBLE",
    "actual_momentum": "DOUBLE",
    "actual_main_voltage": "DOUBLE",
    "actual_robot_voltage": "DOUBLE",
    "actual_robot_current": "DOUBLE",
    "actual_joint_voltage": "VECTOR6D",
    "actual_digital_output_bits": "UINT64",
    "runtime_state": "UINT32",
    "elbow_position": "VECTOR3D",
    "elbow_velocity": "VECTOR3D",
    "robot_status_bits": "UINT32",
    "safety_status_bits": "UINT32",
    "analog_io_types": "UINT32",
    "standard_analog_input0": "DOUBLE",
    "standard_analog_input1": "DOUBLE",
    "standard_analog_output0": "DOUBLE",
    "standard_analog_output1": "DOUBLE",
    "io_current": "DOUBLE",
    "tool_mode": "UINT32",
    "tool_analog_input_types": "UINT32",
    "tool_analog_input0": "DOUBLE",
    "tool_analog_input1": "DOUBLE",
    "tool_output_voltage": "INT32",
    "tool_output_current": "DOUBLE",
    "tool_temperature": "DOUBLE",
    "tcp_force_scalar": "DOUBLE",
    "output_bit_registers0_to_31": "UINT32",
    "output_bit_registers32_to_63": "UINT32",
    "payload": "DOUBLE",
    "payload_cog": "VECTOR3D",
    "payload_inertia": "VECTOR6D",
    "script_control_line": "UINT32",
    "ft_raw_wrench": "VECTOR6D",
}

_FIXED_INPUTS = {
    "speed_slider_mask": "UINT32",
    "speed_slider_fraction": "DOUBLE",
    "standard_digital_output_mask": "UINT8",
    "standard_digital_output": "UINT8",
    "configurable_digital_output_mask": "UINT8",
    "configurable_digital_output": "UINT8",
    "tool_digital_output_mask": "UINT8",
    "tool_digital_output": "UINT8",
    "standard_analog_output_mask": "UINT8",
    "standard_analog_output_type": "UINT8",
    "standard_analog_output_0": "DOUBLE",
    "standard_analog_output_1": "DOUBLE",
    "input_bit_registers0_to_31": "UINT32",
    "input_bit_registers32_to_63": "UINT32",
    "external_force_torque": "VECTOR6D",
}

# General-purpose registers 0-47 (24-47 are the "upper range" that PolyScope >= 3.9 / 5.3 adds).
_REGISTER = re.compile(r"^(input|output)_(int|double|bit)_register_(\d+)$")
_REGISTER_TYPES = {"int": "INT32", "double": "DOUBLE", "bit": "BOOL"}


def _register_type(name: str, direction: str) -> str | None:
    match = _REGISTER.match(name)
    if match is None or match.group(1) != direction:
        return None
    index = int(match.group(3))
    limit = 128 if match.group(2) == "bit" else 48
    if match.group(2) == "bit" and index < 64:
        return None  # bits 0-63 travel packed in the *_bit_registers0_to_31 words
    return _REGISTER_TYPES[match.group(2)] if index < limit else None


def output_type(name: str) -> str:
    """RTDE type of an output (controller -> client) variable, or ``NOT_FOUND``."""
    return _FIXED_OUTPUTS.get(name) or _register_type(name, "output") or NOT_FOUND


def input_type(name: str) -> str:
    """RTDE type of an input (client -> controller) variable, or ``NOT_FOUND``."""
    return _FIXED_INPUTS.get(name) or _register_type(name, "input") or NOT_FOUND


@dataclass(frozen=True)
class Recipe:
    """A registered list of variables and their binary layout (after the recipe id byte)."""

    recipe_id: int
    names: tuple[str, ...]
    types: tuple[str, ...]
    frequency_hz: float = 0.0

    @property
    def valid(self) -> bool:
        return NOT_FOUND not in self.types

    @property
    def layout(self) -> struct.Struct:
        return struct.Struct(">" + "".join(_TYPE_FORMATS[t] for t in self.types))

    def pack(self, values: dict[str, object]) -> bytes:
        """One ``U`` payload: recipe id, then each named value (scalars or sequences) in order."""
        flat: list[object] = []
        for name, kind in zip(self.names, self.types, strict=True):
            value = values[name]
            if kind.startswith("VECTOR"):
                flat.extend(value)  # type: ignore[arg-type]
            else:
                flat.append(value)
        return bytes([self.recipe_id]) + self.layout.pack(*flat)

    def unpack(self, body: bytes) -> dict[str, object]:
        """Values of a ``U`` payload without its recipe id byte, by name."""
        flat = list(self.layout.unpack(body))
        values: dict[str, object] = {}
        for name, kind in zip(self.names, self.types, strict=True):
            width = int(kind[6]) if kind.startswith("VECTOR") else 1
            values[name] = tuple(flat[:width]) if width > 1 else flat[0]
            del flat[:width]
        return values


def split_names(text: bytes) -> tuple[str, ...]:
    """Variable names of a setup request; ``ur_rtde`` leaves a trailing comma."""
    return tuple(n for n in text.decode("ascii", errors="replace").strip().split(",") if n)


def frame(message_type: int, payload: bytes = b"") -> bytes:
    """A whole message: header plus payload."""
    return HEADER.pack(HEADER.size + len(payload), message_type) + payload


def recv_message(sock: socket.socket, *, wait_idle: bool = False) -> tuple[int, bytes] | None:
    """Read one whole message; ``None`` when the peer closed the connection.

    The socket's timeout bounds each read. With ``wait_idle`` a timeout before a message has begun only
    means the peer is quiet, and the wait goes on; once begun, a message must arrive whole in time
    (``TimeoutError`` otherwise). A message is at most 64 KiB: its size field is 16 bits.
    """
    header = _recv_exactly(sock, HEADER.size, wait_idle=wait_idle)
    if header is None:
        return None
    size, message_type = HEADER.unpack(header)
    if size < HEADER.size:
        raise ValueError(f"RTDE header announces {size} bytes, less than the header itself")
    body = _recv_exactly(sock, size - HEADER.size)
    if body is None:
        return None
    return message_type, body


def _recv_exactly(sock: socket.socket, n: int, *, wait_idle: bool = False) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < n:
        try:
            chunk = sock.recv(n - len(chunks))
        except TimeoutError:
            if wait_idle and not chunks:
                continue
            raise
        if not chunk:
            return None
        chunks.extend(chunk)
    return bytes(chunks)
