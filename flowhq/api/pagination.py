from typing import Any

from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """`{count, next, previous, results}`, `?page=` and `?page_size=` (max 500)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["maximum"] = self.max_page_size
                parameter["description"] = f"Results per page (default {self.page_size}, at most {self.max_page_size})."
        return parameters
