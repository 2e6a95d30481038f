// The one way libmq includes Boost.Asio: Boost 1.74's awaitable.hpp uses
// std::exchange without including <utility> (fails under g++ 12 / C++20).
#pragma once

#include <utility>

#include <boost/asio.hpp>

namespace mq::net {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
}  // namespace mq::net
