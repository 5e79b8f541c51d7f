"""Guide: Usage Examples / Custom Health Checks."""
# ruff: noqa: RUF010, W293  (the guide's snippet, kept verbatim)

import asyncio

from otel_botmon import HealthChecker, HealthStatus


async def check_component_status():
    """Stands in for your component's own probe (the guide leaves it to you)."""
    return True


health_checker = HealthChecker()

async def check_custom_component(component):
    """Custom health check function."""
    try:
        # Your health check logic here
        is_healthy = await check_component_status()
        
        if is_healthy:
            return {
                'status': HealthStatus.HEALTHY,
                'message': 'Component is operating normally',
                'metrics': {'response_time': 150}
            }
        else:
            return {
                'status': HealthStatus.CRITICAL,
                'message': 'Component is not responding'
            }
    except Exception as e:
        return {
            'status': HealthStatus.CRITICAL,
            'message': f'Health check failed: {str(e)}'
        }

# Register custom health check
health_checker.register_health_check("my_component", check_custom_component)


# Run every check once and show the result.
results = asyncio.run(health_checker.force_check())
print(results["my_component"].status.value, "-", results["my_component"].message)
