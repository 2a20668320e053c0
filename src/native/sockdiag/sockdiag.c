/*
 * socketOwner(family, localAddress, localPort, remoteAddress, remotePort):
 * the owner UID of the TCP socket with exactly these ends, asked of the
 * kernel through NETLINK_SOCK_DIAG without NLM_F_DUMP, so that it looks
 * up that one socket instead of listing every socket of the machine (as
 * reading /proc/net/tcp does). Addresses are Buffers of 4 or 16 bytes in
 * network order; the result is the UID, or -1 when no such socket exists.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/inet_diag.h>
#include <node_api.h>

#define THROW(env, message) do { napi_throw_error((env), NULL, (message)); return NULL; } while (0)

static int lookup(int family, const unsigned char *local, size_t local_len, unsigned port_local,
                  const unsigned char *remote, size_t remote_len, unsigned port_remote, long *uid) {
  struct {
    struct nlmsghdr header;
    struct inet_diag_req_v2 request;
  } message;
  memset(&message, 0, sizeof message);
  message.header.nlmsg_len = sizeof message;
  message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  message.header.nlmsg_flags = NLM_F_REQUEST;
  message.header.nlmsg_seq = 1;
  message.request.sdiag_family = (unsigned char)family;
  message.request.sdiag_protocol = IPPROTO_TCP;
  message.request.idiag_states = ~0U;
  message.request.id.idiag_sport = htons((unsigned short)port_local);
  message.request.id.idiag_dport = htons((unsigned short)port_remote);
  memcpy(message.request.id.idiag_src, local, local_len);
  memcpy(message.request.id.idiag_dst, remote, remote_len);
  message.request.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  message.request.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return -errno;
  struct timeval timeout = { .tv_sec = 1, .tv_usec = 0 };
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
  if (sendto(fd, &message, sizeof message, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
    int error = errno;
    close(fd);
    return -error;
  }
  long buffer[2048];
  ssize_t received = recv(fd, buffer, sizeof buffer, 0);
  int error = errno;
  close(fd);
  if (received < 0) return -error;

  for (struct nlmsghdr *header = (struct nlmsghdr *)buffer; NLMSG_OK(header, (size_t)received); header = NLMSG_NEXT(header, received)) {
    if (header->nlmsg_type == NLMSG_ERROR) {
      struct nlmsgerr *failure = (struct nlmsgerr *)NLMSG_DATA(header);
      if (failure->error == -ENOENT) {
        *uid = -1;
        return 0;
      }
      return failure->error;
    }
    if (header->nlmsg_type == SOCK_DIAG_BY_FAMILY) {
      struct inet_diag_msg *found = (struct inet_diag_msg *)NLMSG_DATA(header);
      *uid = (long)found->idiag_uid;
      return 0;
    }
  }
  *uid = -1;
  return 0;
}

static napi_value socket_owner(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5) THROW(env, "socketOwner takes 5 arguments");
  int32_t family;
  uint32_t port_local, port_remote;
  void *local, *remote;
  size_t local_len, remote_len;
  if (napi_get_value_int32(env, argv[0], &family) != napi_ok || (family != 4 && family != 6)) THROW(env, "family must be 4 or 6");
  if (napi_get_buffer_info(env, argv[1], &local, &local_len) != napi_ok) THROW(env, "the local address must be a Buffer");
  if (napi_get_value_uint32(env, argv[2], &port_local) != napi_ok || port_local > 65535) THROW(env, "bad local port");
  if (napi_get_buffer_info(env, argv[3], &remote, &remote_len) != napi_ok) THROW(env, "the remote address must be a Buffer");
  if (napi_get_value_uint32(env, argv[4], &port_remote) != napi_ok || port_remote > 65535) THROW(env, "bad remote port");
  size_t expected = family == 4 ? 4 : 16;
  if (local_len != expected || remote_len != expected) THROW(env, "addresses must be 4 (IPv4) or 16 (IPv6) bytes");

  long uid = -1;
  int status = lookup(family == 4 ? AF_INET : AF_INET6, local, local_len, port_local, remote, remote_len, port_remote, &uid);
  if (status < 0) {
    char message[128];
    snprintf(message, sizeof message, "sock_diag: %s", strerror(-status));
    THROW(env, message);
  }
  napi_value result;
  napi_create_int64(env, uid, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "socketOwner", NAPI_AUTO_LENGTH, socket_owner, NULL, &fn);
  napi_set_named_property(env, exports, "socketOwner", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
