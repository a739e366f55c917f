from rest_framework.pagination import PageNumberPagination


class PredictionPagination(PageNumberPagination):
    """`?page=N&page_size=M`: 20 by default, at most 100 (a larger page_size is served as 100)."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
