from __future__ import annotations

from typing import Any

from rest_framework import serializers


class InputSerializer(serializers.Serializer[Any]):
    """Validates a request body and refuses fields it does not know.

    A typo such as `{"nmae": ...}` is a 400 naming the field, not a silent no-op, and
    `{"name": 123}` is a 400 too: text fields take JSON strings only.
    """

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": [f"Expected a JSON object, got {type(data).__name__}."]}
            )
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        # DRF's CharField turns 123 into "123"; a text field takes a JSON string only.
        not_text = sorted(
            name for name, field in self.fields.items()
            if isinstance(field, serializers.CharField) and data.get(name) is not None
            and not isinstance(data[name], str)
        )
        if not_text:
            raise serializers.ValidationError({name: ["Must be a string."] for name in not_text})
        return super().to_internal_value(data)


def validated(serializer_class: type[InputSerializer], data: Any, **kwargs: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
